#' Connect to an OPTIMA portal
#'
#' Checks the URL and the personal API token (create one on the portal's "API tokens" page, or
#' with `manage.py create_api_token USERNAME`) with one request, and returns the connection every
#' other verb takes.
#'
#' @param url The portal's address, e.g. `"https://portal.example.org"`; by default the
#'   environment variable `OPTIMA_URL`.
#' @param token Your personal API token; by default the environment variable `OPTIMA_TOKEN`.
#' @param timeout Seconds to wait for each HTTP request.
#' @return An `optima_connection`.
#' @export
#' @examples
#' \dontrun{
#' con <- optima_connect("https://portal.example.org", token = Sys.getenv("OPTIMA_TOKEN"))
#' }
optima_connect <- function(url = Sys.getenv("OPTIMA_URL"), token = Sys.getenv("OPTIMA_TOKEN"),
                           timeout = 60) {
  if (!is.character(url) || length(url) != 1 || !nzchar(url)) {
    optima_abort("No portal URL: pass `url` or set OPTIMA_URL.", "optima_validation")
  }
  if (!grepl("^https?://", url)) {
    optima_abort(sprintf("The portal URL must start with http:// or https://, not %s.", url),
      "optima_validation")
  }
  if (!is.character(token) || length(token) != 1 || !nzchar(token)) {
    optima_abort("No API token: pass `token` or set OPTIMA_TOKEN.", "optima_validation")
  }
  con <- structure(
    list(url = sub("/+$", "", url), token = token, timeout = timeout),
    class = "optima_connection"
  )
  # The API root answers anyone, but an invalid token is refused (401) on every route.
  optima_request(con, "GET", "/api/")
  con
}

#' @export
print.optima_connection <- function(x, ...) {
  cat("<optima_connection> ", x$url, " (token ", substr(x$token, 1, 8), "...)\n", sep = "")
  invisible(x)
}

# One API call: JSON in and out, the portal's errors as typed conditions, a rate limit (429)
# waited out as its Retry-After says.
optima_request <- function(con, method, path, query = list(), body = NULL, attempts = 3) {
  stopifnot(inherits(con, "optima_connection"))
  url <- paste0(if (grepl("^https?://", path)) path else paste0(con$url, path), query_string(query))
  req <- httr2::request(url)
  req <- httr2::req_method(req, method)
  req <- httr2::req_headers(req,
    Authorization = paste("Token", con$token), Accept = "application/json"
  )
  req <- httr2::req_user_agent(req, "optimaclient (R)")
  req <- httr2::req_timeout(req, con$timeout)
  req <- httr2::req_error(req, is_error = function(resp) FALSE)
  if (!is.null(body)) {
    json <- jsonlite::toJSON(body,
      auto_unbox = TRUE, null = "null", digits = NA, json_verbatim = TRUE
    )
    req <- httr2::req_body_raw(req, json, type = "application/json")
  }
  for (attempt in seq_len(attempts)) {
    resp <- httr2::req_perform(req)
    status <- httr2::resp_status(resp)
    if (status != 429 || attempt == attempts) break
    wait <- suppressWarnings(as.numeric(httr2::resp_header(resp, "Retry-After")))
    Sys.sleep(if (is.na(wait)) 1 else min(wait, 60))
  }
  if (status >= 400) http_error(resp, method, path)
  httr2::resp_body_json(resp, simplifyVector = FALSE)
}

# "?a=1&b=x&b=y" from list(a = 1, b = c("x", "y")); NULL and empty values are left out.
query_string <- function(query) {
  query <- Filter(function(v) length(v) > 0 && !all(is.na(v)), query)
  if (!length(query)) {
    return("")
  }
  parts <- unlist(Map(function(name, values) {
    paste0(name, "=", vapply(as.character(values), utils::URLencode, "", reserved = TRUE))
  }, names(query), query), use.names = FALSE)
  paste0("?", paste(parts, collapse = "&"))
}

# Every page of a paginated list (DRF's {"results", "next"} or the catalogue's envelope).
optima_pages <- function(con, path, query = list()) {
  out <- list()
  page <- optima_request(con, "GET", path, query)
  repeat {
    out <- c(out, page$results)
    if (is.null(page$`next`)) break
    page <- optima_request(con, "GET", page$`next`)
  }
  out
}
