#!/usr/bin/env node
// Compile contracts/src/*.sol with solc's JS API (npm `solc`, pinned in package.json) into
// contracts/build/<Contract>.json: { contract, source, abi, bytecode }.
//   node contracts/build.js          write the files
//   node contracts/build.js --check  exit 1 (naming them) when the committed files are stale
"use strict";
const fs = require("fs");
const path = require("path");
const solc = require("solc");

const here = __dirname;
const srcDir = path.join(here, "src");
const buildDir = path.join(here, "build");

function compile() {
  const sources = {};
  for (const name of fs.readdirSync(srcDir).filter((f) => f.endsWith(".sol")).sort()) {
    sources[name] = { content: fs.readFileSync(path.join(srcDir, name), "utf8") };
  }
  const input = {
    language: "Solidity",
    sources,
    settings: {
      optimizer: { enabled: true, runs: 200 },
      evmVersion: "paris",
      metadata: { bytecodeHash: "none" },
      outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } },
    },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input)));
  const errors = (output.errors || []).filter((e) => e.severity === "error");
  for (const e of output.errors || []) process.stderr.write(e.formattedMessage + "\n");
  if (errors.length) process.exit(2);
  const files = {};
  for (const [source, contracts] of Object.entries(output.contracts)) {
    for (const [name, contract] of Object.entries(contracts)) {
      const artifact = {
        contract: name,
        source: `contracts/src/${source}`,
        compiler: `solc ${solc.version()}`,
        abi: contract.abi,
        bytecode: contract.evm.bytecode.object ? "0x" + contract.evm.bytecode.object : "0x",
      };
      files[`${name}.json`] = JSON.stringify(artifact, null, 2) + "\n";
    }
  }
  return files;
}

function main() {
  const check = process.argv.includes("--check");
  const files = compile();
  const existing = fs.existsSync(buildDir)
    ? fs.readdirSync(buildDir).filter((f) => f.endsWith(".json"))
    : [];
  if (check) {
    const stale = [];
    for (const [name, text] of Object.entries(files)) {
      const file = path.join(buildDir, name);
      if (!fs.existsSync(file) || fs.readFileSync(file, "utf8") !== text) stale.push(name);
    }
    for (const name of existing) if (!(name in files)) stale.push(`${name} (no source)`);
    if (stale.length) {
      process.stderr.write(
        `contracts/build is stale: ${stale.join(", ")}; run \`make contracts\`\n`,
      );
      process.exit(1);
    }
    return;
  }
  fs.mkdirSync(buildDir, { recursive: true });
  for (const name of existing) if (!(name in files)) fs.unlinkSync(path.join(buildDir, name));
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(buildDir, name), text);
  process.stderr.write(`wrote ${Object.keys(files).length} artifacts to contracts/build\n`);
}

main();
