test_that("the catalogue search returns published datasets with their ids", {
  con <- live_connection()
  all <- optima_datasets(con)
  expect_s3_class(all, "data.frame")
  expect_type(all$id, "integer")
  expect_false(anyDuplicated(all$id) > 0)

  lung <- optima_datasets(con, search = "lung")
  expect_gt(nrow(lung), 0)
  expect_lt(nrow(lung), nrow(all))
  expect_true(all(lung$id %in% all$id))
  expect_true(all(grepl("lung", paste(lung$title, lung$description), ignore.case = TRUE)))

  fr <- optima_datasets(con, country = "FR")
  expect_true(nrow(fr) > 0 && all(fr$country == "FR"))
})

test_that("entitlements name the datasets the researcher may analyse", {
  con <- live_connection()
  ent <- optima_entitlements(con, status = "active", access_mode = "federated_analytics")
  expect_gt(nrow(ent), 0)
  expect_true(all(ent$status == "active"))
  expect_true(all(ent$access_mode == "federated_analytics"))
  expect_s3_class(ent$ends_at, "POSIXct")
  expect_true(all(ent$ends_at > Sys.time()))
  # Every entitled dataset is published in the catalogue under the same id.
  expect_true(all(ent$dataset_id %in% optima_datasets(con)$id))
})

test_that("a wrong token is refused at connection", {
  live_connection()
  expect_error(
    optima_connect(token = "opt_not-a-real-token"),
    class = "optima_unauthorized"
  )
})
