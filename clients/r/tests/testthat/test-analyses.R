test_that("a count by sex adds up to the cohort and equals the API's result", {
  con <- live_connection()
  ids <- lung_datasets(con)
  handle <- optima_count(con, ids, optima_cohort(LUNG), strata = "sex")
  expect_output(optima_wait(handle), "runs done")
  counts <- optima_result(handle)
  expect_setequal(counts$sex, c("female", "male"))
  api <- api_analysis(handle$id)$result
  expect_equal(sort(counts$count), sort(api$rows$count))
  expect_equal(sum(counts$count), api$total)
  expect_equal(attr(counts, "total"), api$total)
  expect_setequal(attr(counts, "nodes"), api$nodes$node)
})

test_that("a Kaplan-Meier by sex equals the table read straight from the API", {
  con <- live_connection()
  handle <- lung_km_by_sex(con)
  km <- optima_result(handle)
  expect_s3_class(km, "optima_km")
  expect_setequal(unique(km$stratum), c("female", "male"))
  api <- api_analysis(handle$id)$result
  for (i in seq_len(nrow(api$strata))) {
    mine <- km[km$stratum == api$strata$stratum[i], ]
    theirs <- api$strata$table[[i]]
    expect_equal(mine$time, theirs$time)
    expect_equal(mine$n_at_risk, theirs$n_at_risk)
    expect_equal(mine$n_events, theirs$n_events)
    expect_equal(mine$survival, theirs$survival)
    expect_equal(mine$ci_low, theirs$ci_low)
  }
  # The survival column is the product-limit estimate of the life table's own counts.
  female <- km[km$stratum == "female", ]
  expect_equal(female$survival, cumprod(1 - female$n_events / female$n_at_risk))
  expect_equal(attr(km, "time_unit_days"), 30)
  expect_lte(max(km$time), 60)
  expect_equal(attr(km, "log_rank")$df, 1)
})

test_that("a logistic regression returns its coefficients", {
  con <- live_connection()
  ids <- lung_datasets(con)
  handle <- optima_glm(con, ids, optima_cohort(LUNG),
    outcome_days = 365, covariates = c("age_at_index", "sex_male")
  )
  fit <- optima_result(optima_wait(handle, progress = FALSE))
  expect_s3_class(fit, "optima_glm")
  expect_equal(fit$term, c("intercept", "age_at_index", "sex_male"))
  api <- api_analysis(handle$id)$result
  expect_equal(fit$estimate, api$coefficients$estimate)
  expect_equal(fit$odds_ratio, exp(fit$estimate))
  expect_equal(fit$ci_low, fit$estimate - stats::qnorm(0.975) * fit$std_error)
  expect_gt(attr(fit, "rounds"), 1)
  expect_equal(attr(fit, "n"), api$n)
})

test_that("a characterisation gives one long table", {
  con <- live_connection()
  ids <- entitled_datasets(con, "breast")
  res <- optima_result(optima_wait(optima_characterisation(con, ids, optima_cohort(BREAST)),
    progress = FALSE))
  expect_setequal(unique(res$variable),
    c("person_count", "deaths", "sex", "age_group", "index_year", "follow_up"))
  persons <- res$count[res$variable == "person_count"]
  sexes <- res[res$variable == "sex", ]
  expect_true(all(!sexes$lower_bound))
  expect_equal(sum(sexes$count), persons)
})
