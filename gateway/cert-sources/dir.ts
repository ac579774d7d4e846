// `dir`: every certificate/key pair in a folder (tls/certificate-store.ts `pairsInDir`),
// watched: pairs added to the folder are served, pairs removed stop being served.

import type { CertificateSource } from "../../tls/certificate-store.js";
import { passphraseFields } from "../config/config-schema.js";
import { filePath, type Infer, object, req } from "../config/schema.js";
import type { Plugin } from "../plugins/registry.js";

const schema = object({ dir: req(filePath("a folder of certificates")), ...passphraseFields });

export type DirConfig = Infer<typeof schema>;

// Needs no context, so `lintel check` can make it to load the files (server/config-checks.ts).
export const dirCertSource = {
  category: "certSource",
  kind: "dir",
  schema,
  create: (config: DirConfig): CertificateSource => ({ kind: "dir", ...config }),
} satisfies Plugin<"certSource", DirConfig>;
