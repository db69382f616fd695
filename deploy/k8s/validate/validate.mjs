// Validates Kubernetes manifests against the pinned schemas of kubernetes-models (core API and
// the KEDA, Prometheus Operator and Strimzi CRDs; versions in package-lock.json).
// Usage: node validate.mjs FILE...   Prints one line per resource; exit 1 if any is invalid.
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";

const PACKAGES = {
  "": "kubernetes-models",
  apps: "kubernetes-models",
  "keda.sh": "@kubernetes-models/keda",
  "monitoring.coreos.com": "@kubernetes-models/prometheus-operator",
  "kafka.strimzi.io": "@kubernetes-models/strimzi-kafka-operator",
};

async function model(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  const pkg = PACKAGES[group];
  if (pkg === undefined) throw new Error(`no schema for ${apiVersion} ${kind}`);
  const path = group === "" ? `${pkg}/${version}/${kind}` : `${pkg}/${group}/${version}/${kind}`;
  const module = await import(path);
  return module[kind];
}

let failed = 0;
for (const file of process.argv.slice(2)) {
  for (const document of parseAllDocuments(readFileSync(file, "utf8"))) {
    const resource = document.toJSON();
    if (resource === null) continue;
    const where = `${file}: ${resource.kind} ${resource.metadata?.name}`;
    try {
      const Model = await model(resource.apiVersion, resource.kind);
      new Model(resource).validate();
      console.log(`ok ${where}`);
    } catch (error) {
      failed += 1;
      console.log(`INVALID ${where}: ${error.message}`);
    }
  }
}
process.exit(failed ? 1 : 0);
