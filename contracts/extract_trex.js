#!/usr/bin/env node
// Copy the compiled ERC-3643 (T-REX) and ONCHAINID contracts the service deploys out of the
// pinned npm packages' own artifacts into compact JSON files, with the packages' licences.
//
// Nothing is recompiled: the bytecode is the packages' (solc 0.8.17, as published).
//
// Usage: node extract_trex.js [output-dir]
// Default output: ../src/adapters/outbound/chain/artifacts/trex/
"use strict";

const fs = require("fs");
const path = require("path");

const DEFAULT_OUT = path.join(
  __dirname, "..", "src", "adapters", "outbound", "chain", "artifacts", "trex",
);
const NODE_MODULES = path.join(__dirname, "node_modules");
// EIP-170: the largest runtime code a chain accepts.
const MAX_RUNTIME_BYTES = 24576;

const TREX = "@tokenysolutions/t-rex";
const ONCHAIN_ID = "@onchain-id/solidity";

// [package, artifact path inside the package's artifacts/ directory]
const CONTRACTS = [
  [TREX, "contracts/token/Token.sol/Token.json"],
  [TREX, "contracts/registry/implementation/IdentityRegistry.sol/IdentityRegistry.json"],
  [TREX, "contracts/registry/implementation/IdentityRegistryStorage.sol/IdentityRegistryStorage.json"],
  [TREX, "contracts/registry/implementation/ClaimTopicsRegistry.sol/ClaimTopicsRegistry.json"],
  [TREX, "contracts/registry/implementation/TrustedIssuersRegistry.sol/TrustedIssuersRegistry.json"],
  [TREX, "contracts/compliance/modular/ModularCompliance.sol/ModularCompliance.json"],
  [TREX, "contracts/compliance/modular/modules/CountryAllowModule.sol/CountryAllowModule.json"],
  [ONCHAIN_ID, "contracts/Identity.sol/Identity.json"],
  [ONCHAIN_ID, "contracts/ClaimIssuer.sol/ClaimIssuer.json"],
];

// [package, licence file in the package, name written beside the artifacts]
const LICENCES = [
  [TREX, "LICENSE.md", "LICENSE-T-REX.md"],
  [ONCHAIN_ID, "LICENSE.md", "LICENSE-ONCHAINID.md"],
];

function packageVersion(pkg) {
  const manifest = JSON.parse(fs.readFileSync(path.join(NODE_MODULES, pkg, "package.json"), "utf8"));
  return manifest.version;
}

function extract(pkg, artifactPath) {
  const source = path.join(NODE_MODULES, pkg, "artifacts", artifactPath);
  const raw = JSON.parse(fs.readFileSync(source, "utf8"));
  const links = { ...raw.linkReferences, ...raw.deployedLinkReferences };
  if (Object.keys(links).length > 0) {
    throw new Error(`${artifactPath} needs linked libraries, which this script does not handle`);
  }
  const runtimeBytes = (raw.deployedBytecode.length - 2) / 2;
  if (runtimeBytes > MAX_RUNTIME_BYTES) {
    throw new Error(`${raw.contractName} runtime code is ${runtimeBytes} bytes (> ${MAX_RUNTIME_BYTES})`);
  }
  // Key order here is the key order in the artifact.
  return {
    contractName: raw.contractName,
    sourceName: raw.sourceName,
    package: pkg,
    packageVersion: packageVersion(pkg),
    abi: raw.abi,
    bytecode: raw.bytecode,
    deployedBytecode: raw.deployedBytecode,
  };
}

function main() {
  const outDir = path.resolve(process.argv[2] || DEFAULT_OUT);
  fs.mkdirSync(outDir, { recursive: true });
  for (const [pkg, artifactPath] of CONTRACTS) {
    const artifact = extract(pkg, artifactPath);
    const outPath = path.join(outDir, `${artifact.contractName}.json`);
    fs.writeFileSync(outPath, `${JSON.stringify(artifact)}\n`);
    process.stdout.write(`wrote ${outPath}\n`);
  }
  for (const [pkg, licence, name] of LICENCES) {
    fs.copyFileSync(path.join(NODE_MODULES, pkg, licence), path.join(outDir, name));
    process.stdout.write(`wrote ${path.join(outDir, name)}\n`);
  }
}

main();
