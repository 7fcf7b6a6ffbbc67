#' Read an analysis' result as data frames
#'
#' Waits for the analysis if it is still running (without a progress bar), then returns its
#' pooled result:
#'
#' * cohort count: one row per cell, a column per stratification variable, `count` and
#'   `lower_bound` (`TRUE` where small cells were suppressed at a node, so the count is at
#'   least this) or `suppressed`;
#' * characterisation: a long table of `variable` (`person_count`, `deaths`, `sex`,
#'   `age_group`, `index_year`, `follow_up`), `level`, `count`, `lower_bound`;
#' * Kaplan-Meier: the life table per stratum (`stratum`, `time` in time units, `n_at_risk`,
#'   `n_events`, `n_censored`, `survival`, `std_error`, `ci_low`, `ci_high`: 95%
#'   log(-log) interval), class `optima_km`; see [as_survfit()];
#' * logistic regression: the coefficients (`term`, `estimate`, `std_error`, `z`, `p_value`,
#'   `ci_low`, `ci_high`, `odds_ratio`), class `optima_glm`.
#'
#' Attributes carry the rest of the result: `nodes` (which nodes contributed), `aggregation`,
#' and per type `total`, `time_unit_days`, `stratify_by`, `median_survival`, `log_rank`,
#' `suppressed_strata`, `coarsened`, `n`, `deviance`, `aic`, `rounds`, `converged`, `centring`.
#'
#' @param handle An `optima_analysis`.
#' @param allow_partial When not every node contributed, return the result anyway instead of
#'   signalling `optima_partial` (whose `result` field holds it too).
#' @return A data frame, as above.
#' @export
#' @examples
#' \dontrun{
#' km <- optima_result(optima_wait(optima_km(con, c(2, 5), optima_cohort(4115276), "sex")))
#' attr(km, "median_survival")
#' }
optima_result <- function(handle, allow_partial = FALSE) {
  stopifnot(inherits(handle, "optima_analysis"))
  if (identical(handle$data$status, "running")) optima_wait(handle, progress = FALSE)
  check_finished(handle)
  d <- handle$data
  raw <- d$result
  out <- switch(d$type,
    cohort_count = count_frame(raw),
    characterisation = characterisation_frame(raw),
    kaplan_meier = km_frame(raw),
    logistic_regression = glm_frame(raw),
    optima_abort(sprintf("This client cannot read %s results.", d$type), "optima_error")
  )
  attr(out, "analysis") <- handle$id
  attr(out, "nodes") <- vapply(raw$nodes %||% list(), function(n) n$node, "")
  attr(out, "aggregation") <- raw$aggregation %||% NA_character_
  if (isTRUE(d$partial) && !allow_partial) {
    missing <- vapply(raw$missing_nodes %||% list(), function(n) {
      reason <- if (nzchar(n$reason %||% "")) paste0(": ", n$reason)
      paste0(n$node, " (", gsub("_", " ", n$status), reason, ")")
    }, "")
    optima_abort(
      paste0(
        sprintf("Analysis %d: partial result, not every node contributed", handle$id),
        if (length(missing)) paste0("; missing ", paste(missing, collapse = ", ")), ". ",
        "Use allow_partial = TRUE to accept it."
      ),
      "optima_partial",
      analysis = handle$id, result = out
    )
  }
  out
}

# Rows of JSON objects with differing keys -> a data frame with every key as a column.
cells_frame <- function(rows) {
  keys <- unique(unlist(lapply(rows, names)))
  cols <- lapply(stats::setNames(keys, keys), function(k) {
    values <- lapply(rows, function(r) r[[k]] %||% NA)
    unlist(values, use.names = FALSE)
  })
  as.data.frame(cols, stringsAsFactors = FALSE)
}

count_frame <- function(raw) {
  out <- cells_frame(raw$rows)
  if ("count" %in% names(out)) out$count <- as.integer(out$count)
  attr(out, "stratify_by") <- as.character(unlist(raw$stratify_by))
  attr(out, "total") <- raw$total
  out
}

characterisation_frame <- function(raw) {
  sections <- list(
    person_count = list(raw$person_count), deaths = list(raw$deaths), sex = raw$by_sex,
    age_group = raw$by_age_group, index_year = raw$by_index_year, follow_up = raw$by_follow_up
  )
  parts <- lapply(names(sections), function(variable) {
    rows <- sections[[variable]] %||% list()
    data.frame(
      variable = rep(variable, length(rows)),
      level = vapply(rows, function(r) {
        # A cell names its level under the section's variable ("sex": "female"); the
        # person count and deaths have none.
        level <- r[[variable]]
        if (is.null(level)) NA_character_ else as.character(level)
      }, ""),
      count = vapply(rows, function(r) as.integer(r$count %||% NA), 1L),
      lower_bound = vapply(rows, function(r) isTRUE(r$lower_bound) || isTRUE(r$suppressed), TRUE),
      stringsAsFactors = FALSE
    )
  })
  do.call(rbind, parts)
}

KM_COLUMNS <- c(
  "time", "n_at_risk", "n_events", "n_censored", "survival", "std_error", "ci_low", "ci_high"
)

km_frame <- function(raw) {
  empty <- as.data.frame(stats::setNames(rep(list(numeric()), length(KM_COLUMNS)), KM_COLUMNS))
  parts <- lapply(raw$strata, function(s) {
    table <- if (length(s$table)) cells_frame(s$table)[KM_COLUMNS] else empty
    cbind(stratum = rep(s$stratum, nrow(table)), table)
  })
  out <- if (length(parts)) do.call(rbind, parts) else cbind(stratum = character(), empty)
  for (col in c("time", "n_at_risk", "n_events", "n_censored")) out[[col]] <- as.integer(out[[col]])
  medians <- vapply(raw$strata, function(s) as.numeric(s$median_survival %||% NA), 1)
  names(medians) <- vapply(raw$strata, function(s) s$stratum, "")
  attr(out, "time_unit_days") <- raw$time_unit_days
  attr(out, "stratify_by") <- raw$stratify_by
  attr(out, "median_survival") <- medians
  attr(out, "log_rank") <- raw$log_rank
  attr(out, "suppressed_strata") <- as.character(unlist(raw$suppressed_strata))
  attr(out, "coarsened") <- isTRUE(raw$coarsened)
  class(out) <- c("optima_km", "data.frame")
  out
}

glm_frame <- function(raw) {
  out <- cells_frame(raw$coefficients)
  for (name in c("n", "deviance", "aic", "rounds", "converged")) attr(out, name) <- raw[[name]]
  attr(out, "centring") <- unlist(raw$centring)
  class(out) <- c("optima_glm", "data.frame")
  out
}

#' A Kaplan-Meier result as a survfit object
#'
#' Turns a pooled Kaplan-Meier table into an object shaped like [survival::survfit()]'s, so that
#' `plot()` (survival's `plot.survfit`) draws the curves with their confidence bands. Times stay
#' in the analysis' time units (`time_unit_days` days each; the element `time_unit_days` says how
#' many).
#'
#' @param x An `optima_km` from [optima_result()], or the `optima_analysis` handle of a
#'   Kaplan-Meier analysis.
#' @param ... Unused.
#' @return An object of class `survfit`: `time`, `n.risk`, `n.event`, `n.censor`, `surv`,
#'   `std.err` (of log survival, as survfit's), `lower`, `upper` (the portal's 95% interval),
#'   `strata` (rows per stratum, named like `"sex=female"`), `n`, `conf.int`, `conf.type`.
#' @export
#' @examples
#' \dontrun{
#' fit <- as_survfit(optima_result(km))
#' plot(fit, col = 1:2, conf.int = TRUE, xlab = "Months", ylab = "Survival")
#' }
as_survfit <- function(x, ...) {
  if (inherits(x, "optima_analysis")) x <- optima_result(x)
  if (!inherits(x, "optima_km")) {
    optima_abort("as_survfit() takes a Kaplan-Meier result (optima_result() of optima_km()).",
      "optima_validation")
  }
  # Loading survival's namespace registers its methods, so plot(), print() and quantile() work.
  if (!requireNamespace("survival", quietly = TRUE)) {
    optima_abort("as_survfit() needs the survival package (Debian: r-cran-survival).",
      "optima_error")
  }
  stratify_by <- attr(x, "stratify_by") %||% "none"
  time_unit_days <- attr(x, "time_unit_days")
  x <- as.data.frame(unclass(x), stringsAsFactors = FALSE)
  x <- x[order(match(x$stratum, unique(x$stratum)), x$time), ]
  strata_names <- unique(x$stratum)
  first <- !duplicated(x$stratum)
  std_err <- ifelse(x$survival > 0, x$std_error / x$survival, NA_real_)
  fit <- list(
    n = x$n_at_risk[first],
    time = as.numeric(x$time),
    n.risk = as.numeric(x$n_at_risk),
    n.event = as.numeric(x$n_events),
    n.censor = as.numeric(x$n_censored),
    surv = x$survival,
    std.err = std_err,
    lower = x$ci_low,
    upper = x$ci_high,
    type = "right",
    logse = TRUE,
    conf.int = 0.95,
    conf.type = "log-log",
    time_unit_days = time_unit_days
  )
  if (!identical(stratify_by, "none")) {
    fit$strata <- stats::setNames(as.integer(table(factor(x$stratum, strata_names))),
      paste0(stratify_by, "=", strata_names))
  }
  structure(fit, class = "survfit")
}
