test_that("as_survfit gives survival's plot.survfit what it needs", {
  skip_if_not_installed("survival")
  con <- live_connection()
  handle <- lung_km_by_sex(con)
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

test_that("the pooled curve equals survival::survfit on the pooled life table", {
  skip_if_not_installed("survival")
  con <- live_connection()
  km <- optima_result(lung_km_by_sex(con))
  # Each time unit's events and censorings as weighted observations: an independent reference
  # for the survival, its standard error and the log(-log) interval the portal computed.
  events <- km[km$n_events > 0, c("stratum", "time", "n_events")]
  censored <- km[km$n_censored > 0, c("stratum", "time", "n_censored")]
  observations <- rbind(
    data.frame(stratum = events$stratum, time = events$time, status = 1, w = events$n_events),
    data.frame(
      stratum = censored$stratum, time = censored$time, status = 0, w = censored$n_censored
    )
  )
  reference <- survival::survfit(survival::Surv(time, status) ~ stratum,
    data = observations, weights = w, conf.type = "log-log"
  )
  for (stratum in c("female", "male")) {
    mine <- km[km$stratum == stratum, ]
    theirs <- summary(reference[paste0("stratum=", stratum)], times = mine$time)
    expect_equal(mine$survival, theirs$surv, tolerance = 1e-10)
    expect_equal(mine$std_error, theirs$std.err, tolerance = 1e-8)
    expect_equal(mine$ci_low, theirs$lower, tolerance = 1e-8)
    expect_equal(mine$ci_high, theirs$upper, tolerance = 1e-8)
    expect_equal(mine$n_at_risk, as.integer(theirs$n.risk))
  }
})
