// `files`: a certificate (with its chain) and its key, read from files and watched. The
// kind of a `tls.certs` entry that names none: `{certPath, keyPath}`.

import type { CertificateSource } from "../../tls/certificate-store.js";
import { passphraseFields } from "../config/config-schema.js";
import { filePath, type Infer, object, opt, req } from "../config/schema.js";
import type { Plugin } from "../plugins/registry.js";

const schema = object({
  certPath: req(filePath("a certificate file")),
  keyPath: req(filePath("a key file")),
  intermediateCertsPath: opt(filePath("a certificate chain file")),
  ...passphraseFields,
});

export type FilesConfig = Infer<typeof schema>;

// Needs no context, so `lintel check` can make it to load the files (server/config-checks.ts).
export const filesCertSource = {
  category: "certSource",
  kind: "files",
  schema,
  create: (config: FilesConfig): CertificateSource => ({ kind: "files", ...config }),
} satisfies Plugin<"certSource", FilesConfig>;
