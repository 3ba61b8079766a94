#!/usr/bin/env node
// Compile the Chainlink test aggregator (MockV3Aggregator) that the reference-price tests
// deploy, from the pinned npm package @chainlink/contracts, with the pinned solcjs.
//
// The package ships the Solidity sources and ABIs but no bytecode, so the sources are compiled
// here exactly as published (nothing is edited) and written as one deterministic artifact, with
// the package's own licence statements beside it.
//
// Usage: node build_pricefeed.js [output-dir]
// Default output: ../src/adapters/outbound/pricefeed/artifacts/
"use strict";

const crypto = require("crypto");
const fs = require("fs");
const path = require("path");
const solc = require("solc");

const PACKAGE = "@chainlink/contracts";
const SOURCE = "src/v0.8/tests/MockV3Aggregator.sol";
const CONTRACT = "MockV3Aggregator";
// The interface every Chainlink-style feed answers: the only ABI the price-feed adapter reads.
const INTERFACE_ABI = "abi/v0.8/AggregatorV3Interface.json";
const DEFAULT_OUT = path.join(
  __dirname, "..", "src", "adapters", "outbound", "pricefeed", "artifacts",
);
const PACKAGE_DIR = path.join(__dirname, "node_modules", PACKAGE);

// Key order here is the key order in the artifact.
function settings() {
  return {
    evmVersion: "paris",
    optimizer: { enabled: true, runs: 200 },
    outputSelection: {
      [SOURCE]: { [CONTRACT]: ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] },
    },
  };
}

// Every source the compiler read, by its name inside the package, in the order it asked.
const read = new Map();

function readSource(name) {
  const normal = path.posix.normalize(name);
  if (normal.startsWith("..") || path.posix.isAbsolute(normal)) {
    throw new Error(`import outside ${PACKAGE}: ${name}`);
  }
  const text = fs.readFileSync(path.join(PACKAGE_DIR, normal), "utf8");
  read.set(normal, text);
  return text;
}

function findImports(importPath) {
  try {
    return { contents: readSource(importPath) };
  } catch (error) {
    return { error: String(error) };
  }
}

function licenceText(manifest, sources) {
  const readme = fs.readFileSync(path.join(PACKAGE_DIR, "README.md"), "utf8");
  const section = readme.split(/^## /m).find((part) => part.startsWith("License"));
  const lines = [
    `# Licence of ${CONTRACT}.json and AggregatorV3Interface.json`,
    "",
    `${CONTRACT}.json is compiled, unmodified, from ${PACKAGE}@${manifest.version}`,
    `(${SOURCE} and the interfaces it imports); AggregatorV3Interface.json holds`,
    `the package's own ${INTERFACE_ABI}. The package ships no licence file;`,
    "its own statements of licence are quoted here verbatim.",
    "",
    `package.json \`license\`: ${manifest.license}`,
    "",
    "Each compiled source's SPDX line:",
    "",
    ...[...sources.entries()].map(([name, text]) => {
      const spdx = text.split("\n").find((line) => line.includes("SPDX-License-Identifier"));
      return `- ${name}: \`${(spdx || "(none)").trim()}\``;
    }),
    "",
    "The package README's licence section:",
    "",
    `## ${(section || "(none)").trim()}`,
    "",
  ];
  return lines.join("\n");
}

function main() {
  const outDir = path.resolve(process.argv[2] || DEFAULT_OUT);
  const manifest = JSON.parse(fs.readFileSync(path.join(PACKAGE_DIR, "package.json"), "utf8"));
  const compilerSettings = settings();
  const input = {
    language: "Solidity",
    sources: { [SOURCE]: { content: readSource(SOURCE) } },
    settings: compilerSettings,
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
  const problems = output.errors || [];
  for (const problem of problems) {
    process.stderr.write(problem.formattedMessage || `${problem.message}\n`);
  }
  if (problems.some((problem) => problem.severity === "error")) {
    throw new Error(`compilation of ${SOURCE} failed`);
  }
  const compiled = output.contracts[SOURCE][CONTRACT];
  const sorted = new Map([...read.entries()].sort(([a], [b]) => a.localeCompare(b)));
  const artifact = {
    contractName: CONTRACT,
    sourceName: SOURCE,
    package: PACKAGE,
    packageVersion: manifest.version,
    sourcesSha256: Object.fromEntries(
      [...sorted.entries()].map(([name, text]) => [
        name, crypto.createHash("sha256").update(text, "utf8").digest("hex"),
      ]),
    ),
    compiler: { name: "solcjs", version: solc.version() },
    settings: { evmVersion: compilerSettings.evmVersion, optimizer: compilerSettings.optimizer },
    abi: compiled.abi,
    bytecode: `0x${compiled.evm.bytecode.object}`,
    deployedBytecode: `0x${compiled.evm.deployedBytecode.object}`,
  };
  fs.mkdirSync(outDir, { recursive: true });
  const artifactPath = path.join(outDir, `${CONTRACT}.json`);
  fs.writeFileSync(artifactPath, `${JSON.stringify(artifact, null, 2)}\n`);
  process.stdout.write(`wrote ${artifactPath}\n`);
  const abi = JSON.parse(fs.readFileSync(path.join(PACKAGE_DIR, INTERFACE_ABI), "utf8"));
  const interfaceArtifact = {
    contractName: "AggregatorV3Interface",
    sourceName: INTERFACE_ABI,
    package: PACKAGE,
    packageVersion: manifest.version,
    abi,
  };
  const interfacePath = path.join(outDir, "AggregatorV3Interface.json");
  fs.writeFileSync(interfacePath, `${JSON.stringify(interfaceArtifact, null, 2)}\n`);
  process.stdout.write(`wrote ${interfacePath}\n`);
  const licencePath = path.join(outDir, "LICENSE-CHAINLINK.md");
  fs.writeFileSync(licencePath, licenceText(manifest, sorted));
  process.stdout.write(`wrote ${licencePath}\n`);
}

main();
