// Reads fhirscribe's FHIR API with fhir-kit-client (npm, pinned in package-lock.json): a FHIR client
// nobody on this project wrote, used exactly as an exchange's integration code would use it.
//
//   node scripts/peers/fhir-client.mjs BASE TOKEN ENCOUNTER_ID
//
// Reads the CapabilityStatement and the SMART metadata, searches
// Condition?encounter=ID&_revinclude=Provenance:target one resource per page (following the
// client's nextPage), and reads the first Condition back. Prints one JSON object; on an HTTP error
// prints {"error", "status", "outcome"} and exits 1.
import { load } from './deps.mjs';

const { Client } = await load('fhir-kit-client');
const [base, token, encounter] = process.argv.slice(2);
if (!base || !token || !encounter) {
  console.error('usage: fhir-client.mjs BASE TOKEN ENCOUNTER_ID');
  process.exit(2);
}

const client = new Client({ baseUrl: base, bearerToken: token });
try {
  const cs = await client.capabilityStatement();
  const auth = await client.smartAuthMetadata();
  const condition = cs.rest[0].resource.find((r) => r.type === 'Condition');

  const pages = [];
  const matches = [];
  const included = [];
  let bundle = await client.search({
    resourceType: 'Condition',
    searchParams: { encounter, _revinclude: 'Provenance:target', _count: 1 },
  });
  while (bundle) {
    pages.push({ total: bundle.total, entries: (bundle.entry || []).length });
    for (const e of bundle.entry || []) {
      (e.search?.mode === 'include' ? included : matches).push(e.resource);
    }
    if (pages.length > 200) throw new Error('more than 200 pages: paging does not end');
    bundle = await client.nextPage({ bundle });
  }
  const first = matches[0] ? await client.read({ resourceType: 'Condition', id: matches[0].id }) : null;
  const conditionRefs = new Set(matches.map((c) => `Condition/${c.id}`));
  console.log(JSON.stringify({
    fhirVersion: cs.fhirVersion,
    conditionSearchParams: (condition?.searchParam || []).map((p) => p.name),
    conditionRevIncludes: condition?.searchRevInclude || [],
    tokenUrl: auth.tokenUrl || null,
    pages,
    conditions: matches.length,
    conditionCodes: matches.map((c) => c.code?.coding?.[0]?.code ?? null),
    provenances: included.filter((r) => r.resourceType === 'Provenance').length,
    everyProvenanceTargetsAMatch: included.every((p) => (p.target || []).some((t) => conditionRefs.has(t.reference))),
    encounters: [...new Set(matches.map((c) => c.encounter?.reference))],
    readBack: first ? first.id === matches[0].id : null,
  }));
} catch (e) {
  console.log(JSON.stringify({ error: e.message, status: e.response?.status ?? null, outcome: e.response?.data ?? null }));
  process.exit(1);
}
