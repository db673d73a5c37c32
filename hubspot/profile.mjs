#!/usr/bin/env node
// Writes the project's profile, hubspot/src/hsprofile.<name>.json (git-ignored): the HubSpot account `hs project
// upload --profile <name>` uploads to, and the variables the *-hsmeta.json files use as ${Name}. Each variable is
// the deployed stack's output of the same name, read with the AWS CLI, so no URL is ever typed by hand.
//
//   node hubspot/profile.mjs --account <HubSpot account id> [--stack chat-sync] [--name prod]
//
// (`make hubspot-profile HUBSPOT_ACCOUNT=<id>` runs this.) AWS_PROFILE / AWS_REGION apply as for the aws CLI.
// check.mjs builds its test profile with profileFor below, so the check fails if a ${Name} has no variable here.

import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

// The profile variables: stack outputs (template.yaml `Outputs`), named as there.
export const STACK_OUTPUTS = ['HubSpotWebhooksUrl'];

// `hs project profile add` accepts letters and digits only.
const PROFILE_NAME = /^[A-Za-z0-9]+$/;

export const PROJECT_DIR = dirname(fileURLToPath(import.meta.url));

export function profileFile(srcDir, name) {
  if (!PROFILE_NAME.test(name)) {
    throw new Error(`a profile name is letters and digits only, got ${JSON.stringify(name)}`);
  }
  return join(srcDir, `hsprofile.${name}.json`);
}

// The profile's content: `accountId` (the HubSpot account id, as `hs account auth` configured it) and one variable
// per stack output in STACK_OUTPUTS, each an https URL.
export function profileFor(accountId, outputs) {
  const id = accountIdOf(accountId);
  const variables = {};
  for (const name of STACK_OUTPUTS) {
    const value = outputs[name];
    if (typeof value !== 'string' || !value.startsWith('https://')) {
      throw new Error(`the stack has no https output ${name} (got ${JSON.stringify(value)}): is it deployed (sam deploy)?`);
    }
    variables[name] = value;
  }
  return { accountId: id, variables };
}

function accountIdOf(value) {
  const id = Number(value);
  if (!Number.isSafeInteger(id) || id <= 0 || String(id) !== String(value).trim()) {
    throw new Error(`the HubSpot account id is a positive number (see \`hs account list\`), got ${JSON.stringify(value)}`);
  }
  return id;
}

// The stack's outputs, by name.
function stackOutputs(stack) {
  let text;
  try {
    text = execFileSync(
      'aws',
      ['cloudformation', 'describe-stacks', '--stack-name', stack, '--query', 'Stacks[0].Outputs', '--output', 'json'],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
    );
  } catch (error) {
    throw new Error(`could not read the outputs of stack ${stack} with the aws CLI (${error.message.split('\n')[0]})`);
  }
  return Object.fromEntries((JSON.parse(text) ?? []).map((output) => [output.OutputKey, output.OutputValue]));
}

function parseArgs(argv) {
  const options = { stack: 'chat-sync', name: 'prod', account: undefined };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    const key = { '--account': 'account', '--stack': 'stack', '--name': 'name' }[flag];
    if (!key || value === undefined) {
      throw new Error(`usage: node hubspot/profile.mjs --account <HubSpot account id> [--stack chat-sync] [--name prod]`);
    }
    options[key] = value;
  }
  if (!options.account) {
    throw new Error('--account is required: the HubSpot account id the app is uploaded to (see `hs account list`)');
  }
  accountIdOf(options.account);
  return options;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    const options = parseArgs(process.argv.slice(2));
    const file = profileFile(join(PROJECT_DIR, 'src'), options.name);
    const profile = profileFor(options.account, stackOutputs(options.stack));
    writeFileSync(file, `${JSON.stringify(profile, null, 2)}\n`);
    console.log(`wrote ${file}: account ${profile.accountId}, from stack ${options.stack}:`);
    for (const [name, value] of Object.entries(profile.variables)) console.log(`  ${name} = ${value}`);
  } catch (error) {
    console.error(`hubspot/profile.mjs: ${error.message}`);
    process.exit(1);
  }
}
