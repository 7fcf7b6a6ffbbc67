#' Errors the portal reports, as typed conditions
#'
#' Every error this package signals has class `optima_error` and carries the portal's own
#' message, its HTTP status and error code, and (for bad input) the messages per field. Catch
#' the kind you care about with [tryCatch()]:
#'
#' * `optima_validation`: HTTP 400, the request was invalid (`fields` names what is wrong);
#' * `optima_not_entitled`: HTTP 403, you hold no active entitlement for a dataset;
#' * `optima_forbidden`: any other HTTP 403; `optima_unauthorized`: HTTP 401 (bad token);
#' * `optima_not_found`: HTTP 404 (unknown, or not yours to see);
#' * `optima_refused`: an analysis failed because nodes refused it by their disclosure policy
#'   (`runs` lists each node's status and reason);
#' * `optima_failed`: an analysis failed for another reason;
#' * `optima_partial`: an analysis completed without every node (`result` holds it anyway);
#' * `optima_timeout`: [optima_wait()] gave up waiting;
#' * `optima_http_error`: any other HTTP error (e.g. 500, or 429 after three waits).
#'
#' @name optima_conditions
#' @examples
#' \dontrun{
#' tryCatch(
#'   optima_km(con, datasets = 1, cohort = optima_cohort(4115276)),
#'   optima_not_entitled = function(e) message("Request access first: ", conditionMessage(e))
#' )
#' }
NULL

optima_abort <- function(message, class, ..., call = NULL) {
  classes <- unique(c(class, "optima_error", "error", "condition"))
  stop(structure(class = classes, list(message = message, call = call, ...)))
}

# The portal's one error shape: {"error": {"status", "code", "message", "fields"}}.
http_error <- function(resp, method, path) {
  status <- httr2::resp_status(resp)
  body <- tryCatch(httr2::resp_body_json(resp, simplifyVector = FALSE), error = function(e) NULL)
  err <- if (is.list(body) && is.list(body$error)) body$error else list()
  message <- err$message %||% sprintf("HTTP %d from %s %s", status, method, path)
  fields <- lapply(err$fields %||% list(), unlist)
  if (length(fields)) {
    details <- vapply(
      names(fields), function(f) paste0(f, ": ", paste(fields[[f]], collapse = " ")), ""
    )
    message <- paste(c(message, details), collapse = "\n  ")
  }
  class <- switch(as.character(status),
    "400" = "optima_validation",
    "401" = "optima_unauthorized",
    "403" = if (grepl("entitlement", message, ignore.case = TRUE)) {
      c("optima_not_entitled", "optima_forbidden")
    } else {
      "optima_forbidden"
    },
    "404" = "optima_not_found",
    "optima_http_error"
  )
  optima_abort(message, class, status = status, code = err$code %||% "", fields = fields)
}

`%||%` <- function(x, y) if (is.null(x)) y else x
