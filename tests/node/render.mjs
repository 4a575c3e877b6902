// Formats CSL-JSON items with citeproc-js, the processor Zotero uses, for the tests to compare
// with Scholion's references. Reads {style, locale, items} as JSON on standard input (the style
// and locale as CSL XML text) and writes the bibliography entry of each item, rendered on its
// own as Scholion renders it, as a JSON list of HTML strings.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const CSL = require("citeproc");

const { style, locale, items } = JSON.parse(readFileSync(0, "utf8"));
const entries = items.map((item) => {
  const sys = {
    retrieveLocale: () => locale,
    retrieveItem: (id) => (id === item.id ? item : undefined),
  };
  const engine = new CSL.Engine(sys, style, "en-US", true);
  engine.setOutputFormat("html");
  engine.updateItems([item.id]);
  const [, bibliography] = engine.makeBibliography();
  return bibliography.join("").trim();
});
process.stdout.write(JSON.stringify(entries));
