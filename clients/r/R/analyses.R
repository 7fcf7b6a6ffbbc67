#' Describe a cohort
#'
#' Who an analysis looks at: persons with a condition in `condition_concept_ids` (OMOP concept
#' ids, with their descendants unless `include_descendants = FALSE`), optionally limited by index
#' date, age at index and sex. Or pass `circe`, an ATLAS/Circe cohort definition (JSON text or a
#' file path), instead.
#'
#' @param condition_concept_ids OMOP condition concept ids, e.g. `c(4115276, 4110591)` (NSCLC,
#'   SCLC).
#' @param include_descendants Whether descendants of the concepts count too.
#' @param index_date_min,index_date_max Earliest and latest index date (a `Date` or
#'   `"YYYY-MM-DD"`).
#' @param age_min,age_max Age at index, 0 to 130.
#' @param sex `"male"` or `"female"`.
#' @param circe An ATLAS/Circe cohort definition: JSON text or the path of a JSON file.
#' @return An `optima_cohort` (a list as the portal's `params.cohort` takes it).
#' @export
#' @examples
#' lung <- optima_cohort(c(4115276, 4110591), age_min = 18)
optima_cohort <- function(condition_concept_ids = NULL, include_descendants = TRUE,
                          index_date_min = NULL, index_date_max = NULL, age_min = NULL,
                          age_max = NULL, sex = NULL, circe = NULL) {
  if (!is.null(circe)) {
    if (!is.null(condition_concept_ids)) {
      optima_abort("Give either condition_concept_ids or circe, not both.", "optima_validation")
    }
    text <- if (length(circe) == 1 && file.exists(circe)) {
      paste(readLines(circe, warn = FALSE), collapse = "\n")
    } else {
      paste(circe, collapse = "\n")
    }
    if (!jsonlite::validate(text)) {
      optima_abort("circe is neither JSON text nor the path of a JSON file.", "optima_validation")
    }
    return(structure(list(circe = structure(text, class = "json")), class = "optima_cohort"))
  }
  if (length(condition_concept_ids) == 0) {
    optima_abort("A cohort needs at least one condition concept id (or a circe definition).",
      "optima_validation")
  }
  cohort <- list(
    condition_concept_ids = I(as.numeric(condition_concept_ids)),
    include_descendants = isTRUE(include_descendants),
    index_date_min = if (!is.null(index_date_min)) format(as.Date(index_date_min)),
    index_date_max = if (!is.null(index_date_max)) format(as.Date(index_date_max)),
    age_min = age_min, age_max = age_max, sex = sex
  )
  structure(Filter(Negate(is.null), cohort), class = "optima_cohort")
}

as_cohort <- function(cohort) {
  if (inherits(cohort, "optima_cohort")) {
    return(unclass(cohort))
  }
  if (is.numeric(cohort)) {
    return(unclass(optima_cohort(cohort)))
  }
  optima_abort("cohort must come from optima_cohort() or be condition concept ids.",
    "optima_validation")
}

#' Start a federated analysis
#'
#' Each verb starts one analysis on the nodes that serve `datasets` (`POST /api/analyses/`) and
#' returns at once with a handle; [optima_wait()] follows it and [optima_result()] reads its
#' result as data frames. You need an active entitlement for federated analytics on every
#' dataset (see [optima_entitlements()]), else an `optima_not_entitled` error is signalled.
#'
#' * `optima_count()`: persons in the cohort, optionally by `"sex"`, `"age_group"`,
#'   `"index_year"`.
#' * `optima_characterisation()`: person count, sex, age group, index year, deaths, follow-up.
#' * `optima_km()`: Kaplan-Meier survival from the index date, in units of `time_unit_days`,
#'   optionally by `"sex"` or `"age_group"`.
#' * `optima_glm()`: logistic regression of death within `outcome_days` on `covariates`
#'   (`"age_at_index"`, `"sex_male"`, `"index_year"`), fitted by federated Fisher scoring.
#'
#' @param con A connection from [optima_connect()].
#' @param datasets Dataset ids (the `id` column of [optima_datasets()] or the `dataset_id`
#'   column of [optima_entitlements()]).
#' @param cohort An [optima_cohort()], or condition concept ids.
#' @param strata For counts, any of `"sex"`, `"age_group"`, `"index_year"`; for Kaplan-Meier one
#'   of `"none"`, `"sex"`, `"age_group"` (the portal's `stratify_by`).
#' @param time_unit_days Days per time unit of the survival table (1 to 3660).
#' @param max_time_units Follow-up cut off after this many time units (1 to 10000).
#' @param outcome_days The outcome: death within this many days of the index date.
#' @param covariates Model terms besides the intercept.
#' @param min_nodes Fewest nodes that must answer (default: every node).
#' @param title A title shown on the portal's analysis page.
#' @param deadline_hours Each node's run expires when it has not answered within this many hours.
#' @return An `optima_analysis` handle.
#' @name optima_analyses
#' @examples
#' \dontrun{
#' km <- optima_km(con, datasets = c(2, 5), cohort = optima_cohort(c(4115276, 4110591)),
#'   strata = "sex")
#' optima_wait(km)
#' optima_result(km)
#' }
NULL

#' @rdname optima_analyses
#' @export
optima_count <- function(con, datasets, cohort, strata = character(), min_nodes = NULL,
                         title = "", deadline_hours = 24) {
  start_analysis(con, "cohort_count", datasets,
    list(cohort = as_cohort(cohort), stratify_by = I(as.character(strata))),
    min_nodes, title, deadline_hours
  )
}

#' @rdname optima_analyses
#' @export
optima_characterisation <- function(con, datasets, cohort, min_nodes = NULL, title = "",
                                    deadline_hours = 24) {
  start_analysis(con, "characterisation", datasets, list(cohort = as_cohort(cohort)),
    min_nodes, title, deadline_hours)
}

#' @rdname optima_analyses
#' @export
optima_km <- function(con, datasets, cohort, strata = "none", time_unit_days = 30,
                      max_time_units = 120, min_nodes = NULL, title = "", deadline_hours = 24) {
  params <- list(
    cohort = as_cohort(cohort), stratify_by = strata,
    time_unit_days = time_unit_days, max_time_units = max_time_units
  )
  start_analysis(con, "kaplan_meier", datasets, params, min_nodes, title, deadline_hours)
}

#' @rdname optima_analyses
#' @export
optima_glm <- function(con, datasets, cohort, outcome_days = 365, covariates = character(),
                       min_nodes = NULL, title = "", deadline_hours = 24) {
  params <- list(
    cohort = as_cohort(cohort),
    outcome = list(kind = "death_within_days", days = outcome_days),
    covariates = I(as.character(covariates))
  )
  start_analysis(con, "logistic_regression", datasets, params, min_nodes, title, deadline_hours)
}

start_analysis <- function(con, type, datasets, params, min_nodes, title, deadline_hours) {
  body <- list(
    type = type, version = 1, datasets = I(as.numeric(datasets)), params = params,
    min_nodes = min_nodes, title = title, deadline_hours = deadline_hours
  )
  body <- Filter(Negate(is.null), body)
  analysis_handle(con, optima_request(con, "POST", "/api/analyses/", body = body))
}

#' An analysis you started earlier
#'
#' @param con A connection from [optima_connect()].
#' @param id The analysis' number (as on its page on the portal).
#' @return An `optima_analysis` handle, as the verbs that start analyses return.
#' @export
optima_analysis <- function(con, id) {
  analysis_handle(con, optima_request(con, "GET", sprintf("/api/analyses/%d/", as.integer(id))))
}

analysis_handle <- function(con, data) {
  handle <- new.env(parent = emptyenv())
  handle$con <- con
  handle$id <- as.integer(data$id)
  handle$data <- data
  class(handle) <- "optima_analysis"
  handle
}

refresh <- function(handle) {
  handle$data <- optima_request(handle$con, "GET", sprintf("/api/analyses/%d/", handle$id))
  invisible(handle)
}

#' @export
print.optima_analysis <- function(x, ...) {
  d <- x$data
  runs <- d$runs %||% list()
  done <- sum(vapply(runs, function(r) identical(r$status, "completed"), TRUE))
  cat(sprintf("<optima_analysis %d> %s, %s (round %s, %d of %d runs completed)\n",
    x$id, d$type, d$status, d$current_round %||% 1, done, length(runs)))
  if (nzchar(d$reason %||% "")) cat("  ", d$reason, "\n", sep = "")
  invisible(x)
}
