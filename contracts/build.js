#!/usr/bin/env node
// Compile our Solidity sources with the pinned solcjs and write deterministic artifacts.
//
// Usage: node build.js                      every contract, to the default paths
//        node build.js <Contract> [output-path]
// Default output: ../src/adapters/outbound/chain/artifacts/<Contract>.json
// Imports of "@openzeppelin/..." resolve to the pinned package in node_modules.
"use strict";

const crypto = require("crypto");
const fs = require("fs");
const path = require("path");
const solc = require("solc");

// Contract name -> npm packages its source imports (their versions go into the artifact).
const CONTRACTS = {
  Stablecoin: ["@openzeppelin/contracts"],
};
const ARTIFACT_DIR = path.join(__dirname, "..", "src", "adapters", "outbound", "chain", "artifacts");
const NODE_MODULES = path.join(__dirname, "node_modules");

// Key order here is the key order in the artifact.
function settings(sourceName, contract) {
  return {
    evmVersion: "paris",
    optimizer: { enabled: true, runs: 200 },
    outputSelection: {
      [sourceName]: { [contract]: ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] },
    },
  };
}

function findImports(importPath) {
  if (!importPath.startsWith("@openzeppelin/contracts/")) {
    return { error: `import outside @openzeppelin/contracts: ${importPath}` };
  }
  return { contents: fs.readFileSync(path.join(NODE_MODULES, importPath), "utf8") };
}

function packageVersion(pkg) {
  return JSON.parse(fs.readFileSync(path.join(NODE_MODULES, pkg, "package.json"), "utf8")).version;
}

function compile(sourceName, contract, source) {
  const compilerSettings = settings(sourceName, contract);
  const input = { language: "Solidity", sources: { [sourceName]: { content: source } }, settings: compilerSettings };
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
  const problems = output.errors || [];
  for (const problem of problems) {
    process.stderr.write(problem.formattedMessage || `${problem.message}\n`);
  }
  if (problems.some((problem) => problem.severity === "error")) {
    throw new Error(`compilation of ${sourceName} failed`);
  }
  return output.contracts[sourceName][contract];
}

function build(contract, outArg) {
  const sourceName = `${contract}.sol`;
  const compilerSettings = settings(sourceName, contract);
  const outPath = path.resolve(outArg || path.join(ARTIFACT_DIR, `${contract}.json`));
  const sourceBytes = fs.readFileSync(path.join(__dirname, sourceName));
  const compiled = compile(sourceName, contract, sourceBytes.toString("utf8"));
  const dependencies = Object.fromEntries(CONTRACTS[contract].map((pkg) => [pkg, packageVersion(pkg)]));
  const artifact = {
    contractName: contract,
    sourceName: sourceName,
    sourceSha256: crypto.createHash("sha256").update(sourceBytes).digest("hex"),
    ...(CONTRACTS[contract].length > 0 ? { dependencies } : {}),
    compiler: { name: "solcjs", version: solc.version() },
    settings: { evmVersion: compilerSettings.evmVersion, optimizer: compilerSettings.optimizer },
    abi: compiled.abi,
    bytecode: `0x${compiled.evm.bytecode.object}`,
    deployedBytecode: `0x${compiled.evm.deployedBytecode.object}`,
  };
  fs.mkdirSync(path.dirname(outPath), { recursive: true });
  fs.writeFileSync(outPath, `${JSON.stringify(artifact, null, 2)}\n`);
  process.stdout.write(`wrote ${outPath}\n`);
}

function main() {
  const [first, second] = process.argv.slice(2);
  if (first === undefined) {
    for (const contract of Object.keys(CONTRACTS)) {
      build(contract);
    }
  } else if (Object.hasOwn(CONTRACTS, first)) {
    build(first, second);
  } else {
    throw new Error(`unknown contract ${first} (known: ${Object.keys(CONTRACTS).join(", ")})`);
  }
}

main();
