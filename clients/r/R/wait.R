#' Wait for an analysis to finish
#'
#' Polls the portal until the analysis has completed, failed or been cancelled, showing a text
#' progress bar: the round (logistic regression takes several), the runs done out of the round's
#' runs, and each node's state.
#'
#' @param handle An `optima_analysis` from one of the verbs that start analyses.
#' @param progress Whether to show the progress bar.
#' @param timeout Seconds to wait before giving up with an `optima_timeout` error (the analysis
#'   goes on at the portal; wait again later).
#' @param interval Seconds between polls.
#' @return The handle, invisibly, once the analysis has completed. A failed analysis signals
#'   `optima_refused` when nodes refused it by their disclosure policy, `optima_failed`
#'   otherwise, each with the portal's reason.
#' @export
#' @examples
#' \dontrun{
#' handle <- optima_count(con, datasets = c(2, 5), cohort = optima_cohort(4115276))
#' optima_wait(handle)
#' }
optima_wait <- function(handle, progress = TRUE, timeout = 3600, interval = 1) {
  stopifnot(inherits(handle, "optima_analysis"))
  deadline <- Sys.time() + timeout
  shown <- ""
  repeat {
    d <- handle$data
    if (progress) {
      line <- progress_line(d)
      if (!identical(line, shown)) {
        cat(if (interactive()) "\r" else "", line, if (!interactive()) "\n", sep = "")
        utils::flush.console()
        shown <- line
      }
    }
    if (!identical(d$status, "running")) break
    if (Sys.time() > deadline) {
      if (progress && interactive()) cat("\n")
      optima_abort(
        sprintf("Analysis %d is still running after %s seconds.", handle$id, timeout),
        "optima_timeout",
        analysis = handle$id
      )
    }
    Sys.sleep(interval)
    refresh(handle)
  }
  if (progress && interactive()) cat("\n")
  check_finished(handle)
  invisible(handle)
}

progress_line <- function(d, width = 20) {
  round <- d$current_round %||% 1
  runs <- Filter(function(r) identical(as.integer(r$round), as.integer(round)), d$runs %||% list())
  open <- c("pending", "dispatched", "awaiting_approval", "running", "awaiting_release")
  done <- sum(vapply(runs, function(r) !(r$status %in% open), TRUE))
  total <- max(length(runs), 1)
  filled <- round(width * done / total)
  nodes <- vapply(runs, function(r) paste0(r$node, ": ", gsub("_", " ", r$status)), "")
  sprintf("analysis %d round %s |%s%s| %d/%d runs done  %s  [%s]",
    d$id, round, strrep("=", filled), strrep(" ", width - filled), done, length(runs),
    paste(nodes, collapse = ", "), d$status)
}

# Signal the portal's reason for an analysis that did not complete.
check_finished <- function(handle) {
  d <- handle$data
  if (identical(d$status, "completed")) {
    return(invisible(handle))
  }
  runs <- d$runs %||% list()
  runs_frame <- rows_frame(runs, list(
    node = function(r) r$node, round = function(r) as.integer(r$round),
    status = function(r) r$status, reason = function(r) r$reason %||% ""
  ))
  reason <- d$reason %||% ""
  message <- sprintf("Analysis %d %s: %s", handle$id, d$status,
    if (nzchar(reason)) reason else "no reason given.")
  refused <- any(runs_frame$status == "rejected_by_policy")
  optima_abort(message, if (refused) "optima_refused" else "optima_failed",
    analysis = handle$id, runs = runs_frame
  )
}
