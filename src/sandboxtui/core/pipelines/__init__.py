"""One module per pipeline, behind one interface (`base.Enforcer`): bubblewrap, legacy
Landlock, proxy (a layer on bubblewrap) and none (danger-full-access). `core.pipeline`'s
`choose_pipeline()` says which one runs and why; `PipelineChoice.enforcer()` makes it."""
