"""One module per analysis kind: what is particular to it (pooling, result checks, exports, plots,
released populations, form fields, its page). The registry that names them is
:mod:`federation.analysis_types`; call sites ask a kind, they never compare type strings."""
