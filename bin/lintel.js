#!/usr/bin/env node
// The lintel command; the code is compiled to dist/ by `npm run build`.
import { main } from "../dist/gateway/cli/main.js";

process.exitCode = await main(process.argv.slice(2));
