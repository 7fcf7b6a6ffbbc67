#' Search the catalogue
#'
#' The same search, facets and sorting as the catalogue page (`GET /api/datasets/`), every page
#' of results in one data frame. The `id` column is what the analysis verbs take as `datasets`.
#'
#' @param con A connection from [optima_connect()].
#' @param search Words in the title, description or keywords.
#' @param indication Cancer indication codes, e.g. `"lung"` (hierarchical: `"lung"` finds NSCLC
#'   and SCLC datasets too).
#' @param country ISO 3166-1 alpha-2 country codes, e.g. `c("FR", "DE")`.
#' @param category Data categories, e.g. `"clinical"`, `"imaging"`.
#' @param mode Access modes, `"federated_analytics"` or `"federated_learning"`.
#' @param cdm OMOP CDM versions, e.g. `"5.4"`.
#' @param publisher Publishing organisations' slugs.
#' @param freshness `"fresh"` or `"overdue"` (against the agreed update interval).
#' @param sort One of the portal's sort orders (`"relevance"`, `"recent"`, `"title"`, ...).
#' @return A data frame, one row per published dataset: `id`, `identifier`, `title`,
#'   `description`, `publisher` (slug), `publisher_name`, `country`, `cdm_version`,
#'   `access_modes` and `indications` (comma-separated), `number_of_individuals`, `version`,
#'   `freshness`, `url`.
#' @export
#' @examples
#' \dontrun{
#' lung <- optima_datasets(con, search = "lung", mode = "federated_analytics")
#' lung[, c("id", "title", "country")]
#' }
optima_datasets <- function(con, search = NULL, indication = NULL, country = NULL,
                            category = NULL, mode = NULL, cdm = NULL, publisher = NULL,
                            freshness = NULL, sort = NULL) {
  query <- list(
    q = search, indication = indication, country = country, category = category,
    mode = mode, cdm = cdm, publisher = publisher, freshness = freshness, sort = sort,
    per_page = 100
  )
  rows <- optima_pages(con, "/api/datasets/", query)
  rows_frame(rows, list(
    id = function(r) as.integer(r$id),
    identifier = function(r) r$identifier,
    title = function(r) r$title,
    description = function(r) r$description %||% "",
    publisher = function(r) r$publisher$slug,
    publisher_name = function(r) r$publisher$name,
    country = function(r) r$country,
    cdm_version = function(r) r$cdm_version %||% NA_character_,
    access_modes = function(r) paste(unlist(r$access_modes), collapse = ","),
    indications = function(r) paste(unlist(r$indications), collapse = ","),
    number_of_individuals = function(r) as.integer(r$number_of_individuals %||% NA),
    version = function(r) as.integer(r$version),
    freshness = function(r) r$freshness,
    url = function(r) r$url
  ))
}

#' Your entitlements
#'
#' Entitlements you hold (`GET /api/entitlements/`): which datasets you may analyse, in which
#' access mode, until when.
#'
#' @param con A connection from [optima_connect()].
#' @param status Only entitlements in this status: `"active"`, `"suspended"`, `"revoked"` or
#'   `"expired"`.
#' @param access_mode Only this access mode, `"federated_analytics"` or `"federated_learning"`.
#' @return A data frame: `id`, `dataset_id` (what the analysis verbs take), `dataset_identifier`,
#'   `dataset_title`, `access_mode`, `status`, `starts_at`, `ends_at` (POSIXct), `request`,
#'   `agreement`.
#' @export
#' @examples
#' \dontrun{
#' ent <- optima_entitlements(con, status = "active", access_mode = "federated_analytics")
#' ent$dataset_id
#' }
optima_entitlements <- function(con, status = NULL, access_mode = NULL) {
  rows <- optima_pages(con, "/api/entitlements/", list(status = status, access_mode = access_mode))
  out <- rows_frame(rows, list(
    id = function(r) as.integer(r$id),
    dataset_id = function(r) as.integer(r$dataset$id),
    dataset_identifier = function(r) r$dataset$identifier,
    dataset_title = function(r) r$dataset$title,
    access_mode = function(r) r$access_mode,
    status = function(r) r$status,
    starts_at = function(r) r$starts_at,
    ends_at = function(r) r$ends_at,
    request = function(r) r$request %||% NA_character_,
    agreement = function(r) r$agreement %||% NA_character_
  ))
  out$starts_at <- parse_time(out$starts_at)
  out$ends_at <- parse_time(out$ends_at)
  out
}

# A data frame from a list of JSON objects, one column per accessor (zero rows keep the columns).
rows_frame <- function(rows, columns) {
  cols <- lapply(columns, function(get) {
    values <- lapply(rows, function(r) {
      v <- get(r)
      if (is.null(v)) NA else v
    })
    if (length(values)) unlist(values, use.names = FALSE) else character()
  })
  as.data.frame(cols, stringsAsFactors = FALSE)
}

parse_time <- function(x) {
  # "2026-12-06T10:12:11.782198+01:00" -> POSIXct in UTC.
  x <- sub("\\.[0-9]+", "", as.character(x))
  x <- sub("([+-][0-9]{2}):([0-9]{2})$", "\\1\\2", x)
  x <- sub("Z$", "+0000", x)
  as.POSIXct(x, format = "%Y-%m-%dT%H:%M:%S%z", tz = "UTC")
}
