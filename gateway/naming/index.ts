// gateway/naming: the pure core of Linkerd 1 routing — paths, dtabs, name trees,
// binding and the delegation explainer. It imports nothing else of the project and
// does no I/O; namers, transformers and interpreters plug in through its interfaces.

export * from "./addr.js";
export * from "./bind.js";
export * from "./delegate.js";
export * from "./dtab.js";
export * from "./name.js";
export * from "./name-tree.js";
export * from "./parse.js";
export * from "./path.js";
export * from "./path-pattern.js";
export * from "./var.js";
export * from "./var-cache.js";
