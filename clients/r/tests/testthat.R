library(testthat)
library(optimaclient)

test_check("optimaclient")
