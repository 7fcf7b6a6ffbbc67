test_that("as_survfit gives survival's plot.survfit what it needs", {
  skip_if_not_installed("survival")
  con <- live_connection()
  ids <- lung_datasets(con)
  handle <- optima_wait(optima_km(con, ids, optima_cohort(LUNG), strata = "sex"),
    progress = FALSE)
  km <- optima_result(handle)
  fit <- as_survfit(km)
  expect_s3_class(fit, "survfit")
  expect_equal(names(fit$strata), c("sex=female", "sex=male"))
  expect_equal(sum(fit$strata), nrow(km))
  expect_equal(fit$surv, km$survival[order(km$stratum, km$time)])
  expect_equal(fit$n, as.numeric(tapply(km$n_at_risk, km$stratum, max)))
  # survival's own accessors read it: the median per stratum is the portal's median.
  medians <- stats::quantile(fit, probs = 0.5, conf.int = FALSE)
  expect_equal(as.vector(medians), unname(attr(km, "median_survival")))

  png_file <- tempfile(fileext = ".png")
  grDevices::png(png_file, width = 800, height = 600)
  plot(fit, col = c("firebrick", "steelblue"), conf.int = TRUE, xlab = "Months", ylab = "Survival")
  grDevices::dev.off()
  expect_gt(file.size(png_file), 5000)
  expect_identical(readBin(png_file, "raw", 4), as.raw(c(0x89, 0x50, 0x4e, 0x47)))
})
