# The tests run against a live portal with node agents (the pytest wrapper
# tests/clients/test_r_client.py starts one and sets OPTIMA_URL and OPTIMA_TOKEN, a demo
# researcher's token). Without them there is nothing to test against.
live_connection <- function() {
  if (!nzchar(Sys.getenv("OPTIMA_URL")) || !nzchar(Sys.getenv("OPTIMA_TOKEN"))) {
    testthat::skip("OPTIMA_URL and OPTIMA_TOKEN are not set (no live portal)")
  }
  optima_connect()
}

# The nodes refuse a release whose persons differ from an earlier release to the same researcher
# by 1 .. min_cell_count - 1 (optima_node.ledger), so every analysis here uses one of two cohorts
# whose releases are the same sets of persons or far apart: all lung cancers (count, Kaplan-Meier,
# regression) and all breast cancers (characterisation). The Python client's tests run the same
# count, Kaplan-Meier (60 months) and regression on the same network (tests/clients).
LUNG <- c(4115276, 4110591) # NSCLC, SCLC
BREAST <- 4112853

# The datasets of an indication the researcher may analyse: found in the catalogue, entitled.
entitled_datasets <- function(con, indication) {
  found <- optima_datasets(con, indication = indication, mode = "federated_analytics")
  active <- optima_entitlements(con, status = "active", access_mode = "federated_analytics")
  ids <- intersect(found$id, active$dataset_id)
  if (length(ids) < 2) stop("the demo researcher should be entitled to two ", indication, " sets")
  sort(ids)
}

lung_datasets <- function(con) entitled_datasets(con, "lung")

lung_km_by_sex <- function(con) {
  handle <- optima_km(con, lung_datasets(con), optima_cohort(LUNG),
    strata = "sex", max_time_units = 60
  )
  optima_wait(handle, progress = FALSE)
}

# The analysis as the portal's API returns it, read without this package.
api_analysis <- function(id) {
  url <- sub("/+$", "", Sys.getenv("OPTIMA_URL"))
  req <- httr2::request(sprintf("%s/api/analyses/%d/", url, id))
  req <- httr2::req_headers(req, Authorization = paste("Token", Sys.getenv("OPTIMA_TOKEN")))
  httr2::resp_body_json(httr2::req_perform(req), simplifyVector = TRUE)
}
