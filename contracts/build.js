#!/usr/bin/env node
// Compile RwaToken.sol with the pinned solcjs and write a deterministic artifact.
//
// Usage: node build.js [output-path]
// Default output: ../src/adapters/outbound/chain/artifacts/RwaToken.json
"use strict";

const crypto = require("crypto");
const fs = require("fs");
const path = require("path");
const solc = require("solc");

const CONTRACT = "RwaToken";
const SOURCE_NAME = `${CONTRACT}.sol`;
const DEFAULT_OUT = path.join(
  __dirname, "..", "src", "adapters", "outbound", "chain", "artifacts", `${CONTRACT}.json`,
);

// Key order here is the key order in the artifact.
const SETTINGS = {
  evmVersion: "paris",
  optimizer: { enabled: true, runs: 200 },
  outputSelection: {
    [SOURCE_NAME]: { [CONTRACT]: ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] },
  },
};

function compile(source) {
  const input = { language: "Solidity", sources: { [SOURCE_NAME]: { content: source } }, settings: SETTINGS };
  const output = JSON.parse(solc.compile(JSON.stringify(input)));
  const problems = output.errors || [];
  for (const problem of problems) {
    process.stderr.write(problem.formattedMessage || `${problem.message}\n`);
  }
  if (problems.some((problem) => problem.severity === "error")) {
    throw new Error(`compilation of ${SOURCE_NAME} failed`);
  }
  return output.contracts[SOURCE_NAME][CONTRACT];
}

function main() {
  const outPath = path.resolve(process.argv[2] || DEFAULT_OUT);
  const sourceBytes = fs.readFileSync(path.join(__dirname, SOURCE_NAME));
  const compiled = compile(sourceBytes.toString("utf8"));
  const artifact = {
    contractName: CONTRACT,
    sourceName: SOURCE_NAME,
    sourceSha256: crypto.createHash("sha256").update(sourceBytes).digest("hex"),
    compiler: { name: "solcjs", version: solc.version() },
    settings: { evmVersion: SETTINGS.evmVersion, optimizer: SETTINGS.optimizer },
    abi: compiled.abi,
    bytecode: `0x${compiled.evm.bytecode.object}`,
    deployedBytecode: `0x${compiled.evm.deployedBytecode.object}`,
  };
  fs.mkdirSync(path.dirname(outPath), { recursive: true });
  fs.writeFileSync(outPath, `${JSON.stringify(artifact, null, 2)}\n`);
  process.stdout.write(`wrote ${outPath}\n`);
}

main();
