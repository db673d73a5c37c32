// Stream's official JavaScript SDK (`stream-chat`, from node_modules) against the sandbox Stream double: what a
// browser widget and a backend do, checked step by step. Driven by `sandbox/tests/sandbox/stream_sdk.rs`, which starts the
// double and passes STREAM_BASE_URL, STREAM_API_KEY and STREAM_API_SECRET (the test secret); exits non-zero on the
// first failed check, naming it.
import assert from 'node:assert/strict';
import { StreamChat } from 'stream-chat';

const baseURL = process.env.STREAM_BASE_URL;
const key = process.env.STREAM_API_KEY;
const secret = process.env.STREAM_API_SECRET;
assert.ok(baseURL && key && secret, 'STREAM_BASE_URL, STREAM_API_KEY and STREAM_API_SECRET are required');

const server = new StreamChat(key, secret, { baseURL });
const now = () => Math.floor(Date.now() / 1000);
const token = (userId, ttlSeconds = 3600) => server.createToken(userId, now() + ttlSeconds, now());
const clients = [];

/** A browser-side client (no secret); Node needs allowServerSideConnect to stay quiet about it. */
function browser() {
  const client = new StreamChat(key, { baseURL, allowServerSideConnect: true });
  clients.push(client);
  return client;
}

/** The first event of `type` on `target` (a client or a channel) that satisfies `accept`, within 5 s. */
function nextEvent(target, type, accept = () => true) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      subscription.unsubscribe();
      reject(new Error(`no ${type} event within 5 s`));
    }, 5000);
    const subscription = target.on(type, (event) => {
      if (!accept(event)) return;
      clearTimeout(timer);
      subscription.unsubscribe();
      resolve(event);
    });
  });
}

/** connectUser's rejection, parsed: the SDK throws an Error whose message is JSON `{code, StatusCode, message}`. */
async function refusal(promise) {
  try {
    await promise;
  } catch (error) {
    try {
      return JSON.parse(error.message);
    } catch {
      return { message: error.message, code: error.code };
    }
  }
  assert.fail('expected connectUser to be refused');
}

async function step(name, body) {
  const started = performance.now();
  try {
    await body();
    console.log(`ok - ${name} (${Math.round(performance.now() - started)} ms)`);
  } catch (error) {
    console.error(`not ok - ${name}`);
    throw error;
  }
}

async function main() {
  await step('the server client creates users and their channels', async () => {
    await server.upsertUsers([
      { id: 'visitor-a', name: 'Ada', role: 'user' },
      { id: 'visitor-b', name: 'Bob', role: 'user' },
      { id: 'agent', name: 'Support', role: 'admin', image: 'https://cdn.example.com/agent.png', team: 'emea' },
    ]);
    for (const [id, visitor] of [['chat-a', 'visitor-a'], ['chat-b', 'visitor-b']]) {
      await server.channel('messaging', id, { created_by_id: 'agent', members: [visitor, 'agent'] }).create();
    }
    await server.channel('messaging', 'chat-a').sendMessage({ text: 'Welcome, Ada', user_id: 'agent' });
  });

  const visitor = browser();
  const agent = browser();
  let visitorChannel;
  let agentChannel;

  await step('connectUser opens the websocket: health.check carries connection_id and me', async () => {
    const opened = await visitor.connectUser({ id: 'visitor-a' }, token('visitor-a'));
    assert.equal(opened.me.id, 'visitor-a');
    assert.equal(opened.me.name, 'Ada', 'me is the stored user');
    assert.ok(opened.connection_id, 'a connection id');
    assert.equal(visitor.wsConnection.isHealthy, true);
    await agent.connectUser({ id: 'agent' }, token('agent'));
  });

  await step('watch returns the channel, its members and the history', async () => {
    visitorChannel = visitor.channel('messaging', 'chat-a');
    const state = await visitorChannel.watch();
    assert.equal(state.channel.cid, 'messaging:chat-a');
    assert.deepEqual(state.members.map((m) => m.user_id).sort(), ['agent', 'visitor-a']);
    assert.deepEqual(state.messages.map((m) => m.text), ['Welcome, Ada']);
    assert.equal(visitorChannel.state.messages.length, 1, 'the SDK took the history into its state');
    agentChannel = agent.channel('messaging', 'chat-a');
    await agentChannel.watch();
    assert.equal(agentChannel.state.watcher_count, 2, 'both connections watch');
  });

  await step('a message sent by another user arrives live as message.new', async () => {
    const arrival = nextEvent(visitorChannel, 'message.new');
    const sent = await agentChannel.sendMessage({ text: 'How can I help?' });
    const event = await arrival;
    assert.equal(event.message.id, sent.message.id);
    assert.equal(event.message.text, 'How can I help?');
    assert.equal(event.user.id, 'agent');
    assert.equal(event.cid, 'messaging:chat-a');
    assert.equal(event.channel_type, 'messaging');
    assert.equal(event.channel_id, 'chat-a');
    assert.equal(event.watcher_count, 2);
    assert.ok(visitorChannel.state.messages.some((m) => m.id === sent.message.id), 'in the SDK state');
  });

  await step('a message sent server-side arrives live too', async () => {
    const arrival = nextEvent(visitorChannel, 'message.new', (e) => e.message.text === 'From the backend');
    await server.channel('messaging', 'chat-a').sendMessage({ text: 'From the backend', user_id: 'agent' });
    await arrival;
  });

  await step("the visitor's own message reaches the agent; edits and deletes arrive", async () => {
    const arrival = nextEvent(agentChannel, 'message.new', (e) => e.user.id === 'visitor-a');
    const { message } = await visitorChannel.sendMessage({ text: 'My order is late' });
    await arrival;
    const updated = nextEvent(agentChannel, 'message.updated');
    await visitor.updateMessage({ id: message.id, text: 'My order #1234 is late' });
    assert.equal((await updated).message.text, 'My order #1234 is late');
    const deleted = nextEvent(agentChannel, 'message.deleted');
    await visitor.deleteMessage(message.id);
    const event = await deleted;
    assert.equal(event.message.id, message.id);
    assert.equal(event.message.type, 'deleted');
  });

  await step('typing indicators: keystroke and stopTyping reach the other watcher', async () => {
    const started = nextEvent(agentChannel, 'typing.start');
    await visitorChannel.keystroke();
    assert.equal((await started).user.id, 'visitor-a');
    const stopped = nextEvent(agentChannel, 'typing.stop');
    await visitorChannel.stopTyping();
    assert.equal((await stopped).user.id, 'visitor-a');
  });

  await step('markRead is accepted and the read state comes back on the next query', async () => {
    await visitorChannel.markRead();
    const state = await server.channel('messaging', 'chat-a').query({ state: true });
    assert.ok(state.read.some((r) => r.user.id === 'visitor-a'), JSON.stringify(state.read));
  });

  await step('queryChannels finds the own channels and watches them', async () => {
    const channels = await visitor.queryChannels({ type: 'messaging', members: { $in: ['visitor-a'] } });
    assert.deepEqual(channels.map((c) => c.cid), ['messaging:chat-a']);
  });

  await step('stopWatching ends the live events', async () => {
    await visitorChannel.stopWatching();
    const state = await server.channel('messaging', 'chat-a').query({ state: true });
    assert.equal(state.watcher_count, 1, 'only the agent still watches');
  });

  await step('a dropped connection reconnects, recovers its channels and gets live events again', async () => {
    const recovered = nextEvent(agent, 'connection.recovered');
    // `terminate()` cuts the socket without a close frame, as a lost network does (close code 1006).
    agent.wsConnection.ws.terminate();
    await recovered;
    assert.equal(agent.wsConnection.isHealthy, true);
    const arrival = nextEvent(agentChannel, 'message.new', (e) => e.message.text === 'After the drop');
    await server.channel('messaging', 'chat-a').sendMessage({ text: 'After the drop', user_id: 'visitor-a' });
    await arrival;
  });

  await step('an expired token: connectUser rejects with code 40', async () => {
    const late = browser();
    const error = await refusal(late.connectUser({ id: 'visitor-b' }, token('visitor-b', -60)));
    assert.equal(error.code, 40, JSON.stringify(error));
    assert.match(error.message, /token is expired/);
  });

  await step('a token for someone else: connectUser rejects', async () => {
    const impostor = browser();
    const error = await refusal(impostor.connectUser({ id: 'visitor-b' }, 'x' + token('visitor-b').slice(1)));
    assert.equal(error.code, 5, JSON.stringify(error));
  });

  await step('a revoked token (revoke_tokens_issued_before): connectUser rejects', async () => {
    const issued = server.createToken('visitor-b', now() + 3600, now() - 10);
    await server.revokeUserToken('visitor-b', new Date());
    const revoked = browser();
    const error = await refusal(revoked.connectUser({ id: 'visitor-b' }, issued));
    assert.equal(error.code, 40, JSON.stringify(error));
    assert.match(error.message, /revoked/);
    const fresh = browser();
    const opened = await fresh.connectUser({ id: 'visitor-b' }, server.createToken('visitor-b', now() + 3600, now() + 1));
    assert.equal(opened.me.id, 'visitor-b', 'a token issued after the revocation connects');
  });

  /** A REST refusal as the SDK reports it: ErrorFromResponse with Stream's code and HTTP status. */
  async function refused(promise) {
    try {
      await promise;
    } catch (error) {
      return { code: error.code, status: error.status, message: error.message };
    }
    assert.fail('expected Stream to refuse');
  }

  await step("partialUpdateUser changes the name and keeps the agent's role and custom fields", async () => {
    const { users } = await server.partialUpdateUser({ id: 'agent', set: { name: 'Support team' } });
    assert.equal(users.agent.name, 'Support team');
    const found = await server.queryUsers({ id: { $in: ['agent'] } });
    assert.equal(found.users.length, 1);
    const [agentUser] = found.users;
    assert.equal(agentUser.role, 'admin');
    assert.equal(agentUser.image, 'https://cdn.example.com/agent.png');
    assert.equal(agentUser.team, 'emea');
    assert.equal(agentUser.name, 'Support team');
  });

  await step('with default grants a user may create a channel and add members to it', async () => {
    const own = visitor.channel('messaging', 'ada-own-room', { members: ['visitor-a'] });
    await own.create();
    const updated = await own.addMembers(['visitor-b', 'agent']);
    assert.deepEqual(updated.members.map((m) => m.user_id).sort(), ['agent', 'visitor-a', 'visitor-b']);
    const users = await visitor.queryUsers({ id: { $in: ['visitor-b'] } });
    assert.equal(users.users.length, 1, 'search-user is granted by default');
  });

  await step('least-privilege grants (PUT /channeltypes, PATCH /app) restrict what a visitor token can do', async () => {
    await server.updateChannelType('messaging', {
      grants: {
        user: [],
        channel_member: ['read-channel', 'create-message', 'update-message-owner', 'delete-message-owner'],
      },
    });
    await server.updateAppSettings({ grants: { user: ['update-user-owner'] } });
    const type = await server.getChannelType('messaging');
    assert.deepEqual(type.grants.user, []);
    assert.deepEqual(type.grants.channel_member.sort(), [
      'create-message',
      'delete-message-owner',
      'read-channel',
      'update-message-owner',
    ]);
    assert.ok(type.grants.admin.includes('update-channel-members'), 'other roles kept');
    assert.equal(type.typing_events, true, 'other settings kept');

    const other = await refused(visitor.channel('messaging', 'chat-b').watch());
    assert.equal(other.code, 17, JSON.stringify(other));
    assert.equal(other.status, 403);
    assert.match(other.message, /not allowed to perform action ReadChannel in scope 'messaging'/);
    const add = await refused(visitorChannel.addMembers(['visitor-b']));
    assert.equal(add.code, 17, JSON.stringify(add));
    assert.match(add.message, /UpdateChannelMembers/);
    const create = await refused(visitor.channel('messaging', 'ada-second-room', { members: ['visitor-a'] }).create());
    assert.equal(create.code, 17, JSON.stringify(create));
    assert.match(create.message, /CreateChannel/);
    const search = await refused(visitor.queryUsers({ id: { $in: ['visitor-b'] } }));
    assert.equal(search.code, 17, JSON.stringify(search));

    await visitorChannel.watch();
    const capabilities = visitorChannel.data.own_capabilities;
    for (const allowed of ['send-message', 'update-own-message', 'delete-own-message', 'read-events']) {
      assert.ok(capabilities.includes(allowed), `${allowed} in ${capabilities}`);
    }
    for (const refused of ['update-channel-members', 'update-any-message', 'delete-channel']) {
      assert.ok(!capabilities.includes(refused), `${refused} not in ${capabilities}`);
    }
    const { message } = await visitorChannel.sendMessage({ text: 'Still here' });
    assert.equal(message.text, 'Still here', 'members still write in their own channel');
    const found = await visitor.queryChannels({ type: 'messaging' });
    assert.deepEqual(
      found.map((c) => c.cid).sort(),
      ['messaging:ada-own-room', 'messaging:chat-a'],
      'queries list only the channels the visitor is a member of',
    );
  });

  await step('deleteUsers (hard) removes the users, their messages and conversations; their tokens stop', async () => {
    const bob = browser();
    await server.revokeUserToken('visitor-b', null); // lifts the earlier revocation
    const bobToken = token('visitor-b');
    await bob.connectUser({ id: 'visitor-b' }, bobToken);
    await bob.channel('messaging', 'chat-b').sendMessage({ text: 'Please forget me' });
    await bob.channel('messaging', 'ada-own-room').sendMessage({ text: 'Me too' });
    await bob.disconnectUser();
    const { task_id } = await server.deleteUsers(['visitor-b'], { user: 'hard', messages: 'hard', conversations: 'hard' });
    assert.ok(task_id, 'an async task');
    let task = await server.getTask(task_id);
    for (let i = 0; i < 50 && task.status !== 'completed'; i += 1) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      task = await server.getTask(task_id);
    }
    assert.equal(task.status, 'completed');
    const users = await server.queryUsers({ id: { $in: ['visitor-b'] } });
    assert.equal(users.users.length, 0, 'the user is gone');
    const channels = await server.queryChannels({ cid: { $in: ['messaging:chat-b'] } });
    assert.equal(channels.length, 0, 'the conversation channel is gone');
    const [room] = await server.queryChannels({ cid: { $in: ['messaging:ada-own-room'] } });
    assert.ok(room, 'a group channel is not a conversation: it stays');
    assert.deepEqual(room.state.messages.map((m) => m.text), [], "the user's messages are gone");
    assert.deepEqual(Object.keys(room.state.members).sort(), ['agent', 'visitor-a'], 'and the user is no member');
    const again = browser();
    const error = await refusal(again.connectUser({ id: 'visitor-b' }, bobToken));
    assert.equal(error.code, 40, JSON.stringify(error));
  });
}

const started = performance.now();
let failure = null;
try {
  await main();
} catch (error) {
  failure = error;
  console.error(error);
}
await Promise.allSettled(clients.map((c) => c.disconnectUser()));
console.log(`${failure ? 'failed' : 'passed'} in ${Math.round(performance.now() - started)} ms`);
// The SDK leaves a 15 s timer behind each connectUser (the race in StableWSConnection._waitForHealthy): exit now.
process.exit(failure ? 1 : 0);
