#!/usr/bin/env node
// Reads the HubSpot project (hubspot/, or the directory given) with HubSpot's own parser, @hubspot/project-parsing-lib
// (what `hs project upload` runs before it uploads anything), and exits 1 on anything it refuses or skips:
// hsproject.json (parseProjectConfig), a platform version the parser does not know or a legacy one, a *-hsmeta.json
// file in a folder the parser skips, invalid JSON, unexpected top-level fields, a bad or duplicate uid, a component
// type it does not know or in the wrong folder, a second webhooks component, a feature without its app, and a
// ${Name} the profile has no variable for. infra/tests/infra/template/vendors.rs runs it (so `make test` does).
//
// Offline, unlike an upload, in one respect: translate() checks each component's `config` against the schemas
// HubSpot serves per account and platform version, which needs an account and the network. Here that one fetch
// (the parser's getIntermediateRepresentationSchema) is replaced by STAND_IN_SCHEMAS below: the two component types
// this project has, with what HubSpot's docs say of their fields (the required ones, the allowed values of
// distribution and auth.type). Everything else is HubSpot's code as the CLI runs it. The profile is built by profile.mjs's profileFor, the code that writes a real one, from made-up outputs.

import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { register } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { PROJECT_DIR, STACK_OUTPUTS, profileFile, profileFor } from './profile.mjs';

const PROFILE = 'check';
const ACCOUNT_ID = 12345678;
const STACK_OUTPUT_VALUES = {
  HubSpotWebhooksUrl: 'https://abcdef1234.execute-api.eu-west-1.amazonaws.com/hubspot/webhooks',
};

// Keyed by the parser's internal component type (mapToInternalType: app -> APPLICATION, webhooks -> WEBHOOKS). A
// type missing here is refused by the parser as "Unsupported type".
const STAND_IN_SCHEMAS = {
  APPLICATION: {
    type: 'object',
    required: ['name', 'description', 'distribution', 'auth'],
    properties: {
      name: { type: 'string', minLength: 1, maxLength: 200, pattern: '^\\S(.*\\S)?$' },
      description: { type: 'string', minLength: 1, maxLength: 8192 },
      distribution: { enum: ['private', 'marketplace'] },
      auth: {
        type: 'object',
        required: ['type', 'requiredScopes'],
        properties: {
          type: { enum: ['static', 'oauth'] },
          requiredScopes: { type: 'array', items: { type: 'string', minLength: 1 }, uniqueItems: true },
          optionalScopes: { type: 'array', items: { type: 'string' } },
          conditionallyRequiredScopes: { type: 'array', items: { type: 'string' } },
        },
      },
    },
  },
  WEBHOOKS: {
    type: 'object',
    required: ['settings', 'subscriptions'],
    properties: {
      settings: {
        type: 'object',
        required: ['targetUrl', 'maxConcurrentRequests'],
        properties: {
          targetUrl: { type: 'string', format: 'uri', pattern: '^https://' },
          maxConcurrentRequests: { type: 'integer', minimum: 1 },
        },
      },
      subscriptions: {
        type: 'object',
        properties: Object.fromEntries(
          ['crmObjects', 'legacyCrmObjects', 'hubEvents'].map((list) => [
            list,
            {
              type: 'array',
              items: {
                type: 'object',
                required: ['subscriptionType', 'active'],
                properties: { subscriptionType: { type: 'string' }, active: { type: 'boolean' } },
              },
            },
          ]),
        ),
      },
    },
  },
};

class CheckFailed extends Error {}
function fail(message) {
  throw new CheckFailed(message);
}

// The parser's schema fetch, replaced by a module that answers STAND_IN_SCHEMAS (a module-loading hook: nothing of
// the parser is copied or changed, and no HTTP client is even loaded).
const translateUrl = import.meta.resolve('@hubspot/project-parsing-lib/translate');
const schemasUrl = new URL('../lib/schemas.js', translateUrl).href;
const hooks = `
  let target, source;
  export async function initialize(data) {
    target = data.target;
    source = 'export async function getIntermediateRepresentationSchema() { return ' + data.schemas + '; }';
  }
  export async function load(url, context, nextLoad) {
    return url === target ? { format: 'module', source, shortCircuit: true } : nextLoad(url, context);
  }`;
register(`data:text/javascript,${encodeURIComponent(hooks)}`, {
  data: { target: schemasUrl, schemas: JSON.stringify(STAND_IN_SCHEMAS) },
});

const { translate, isTranslationError } = await import('@hubspot/project-parsing-lib/translate');
const { parseProjectConfig, isLegacyProject, LATEST_SUPPORTED_PLATFORM_VERSION } = await import(
  '@hubspot/project-parsing-lib/projects'
);
const { validateProfileVariables } = await import('@hubspot/project-parsing-lib/profiles');

const projectDir = resolve(process.argv[2] ?? PROJECT_DIR);
// A copy with the check's profile in place of any real one (those are git-ignored and name a real account). Its
// folder has the project's name, so HubSpot's messages show paths as hubspot/src/...
const scratch = mkdtempSync(join(tmpdir(), 'hubspot-check-'));
try {
  let config;
  try {
    config = parseProjectConfig(projectDir);
  } catch (error) {
    fail(`${projectDir}/hsproject.json: ${error.message}`);
  }
  if (isLegacyProject(config.platformVersion)) {
    fail(`platformVersion ${config.platformVersion} is a legacy one: *-hsmeta.json projects need 2025.2 or later`);
  }
  const copy = join(scratch, basename(projectDir));
  cpSync(projectDir, copy, {
    recursive: true,
    filter: (path) => !/^hsprofile\..*\.json$/.test(basename(path)) && basename(path) !== 'node_modules',
  });
  const srcDir = join(copy, config.srcDir);
  const profile = profileFor(ACCOUNT_ID, STACK_OUTPUT_VALUES);
  const checked = validateProfileVariables(profile.variables, PROFILE);
  if (!checked.success) fail(`the profile profile.mjs writes: ${checked.errors.join('; ')}`);
  writeFileSync(profileFile(srcDir, PROFILE), JSON.stringify(profile, null, 2));

  let result;
  try {
    result = await translate(
      { projectSourceDir: srcDir, platformVersion: config.platformVersion, accountId: ACCOUNT_ID },
      { skipValidation: false, profile: PROFILE },
    );
  } catch (error) {
    fail(isTranslationError(error) ? error.toString() : error.message);
  }
  if (result.skippedHsMetaFiles.length > 0) {
    const skipped = result.skippedHsMetaFiles.map((file) => join(basename(projectDir), config.srcDir, file));
    fail(
      `HubSpot's parser skips ${skipped.join(', ')}: a *-hsmeta.json file must sit in app/ or in a feature ` +
        'folder of app/ (webhooks/, cards/, ...)',
    );
  }
  const nodes = Object.values(result.intermediateRepresentation.intermediateNodesIndexedByUid);
  console.log(
    `[hubspot] OK: ${config.name}, platformVersion ${config.platformVersion} (the CLI's latest supported: ` +
      `${LATEST_SUPPORTED_PLATFORM_VERSION}), profile variables ${STACK_OUTPUTS.join(', ')}`,
  );
  for (const node of nodes) console.log(`  ${node.componentType} ${node.uid} (${node.metaFilePath})`);
} catch (error) {
  console.error(`[hubspot] FAILED: ${error instanceof CheckFailed ? error.message : error.stack}`);
  process.exitCode = 1;
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
