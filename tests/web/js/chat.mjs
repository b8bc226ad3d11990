// The AI SDK's own chat client (what `useChat` runs: `AbstractChat` with the default HTTP
// transport and its stream parser) talking to an rxllm endpoint; prints what it assembled.
//
//   node chat.mjs '{"api": "http://127.0.0.1:PORT/api/chat", "prompts": ["Hi", "More"]}'
//   node chat.mjs '{"api": "...", "prompts": ["Hi"], "stopAfter": 20}'   # stop() mid-stream
//
// Prints {"messages": [...UI messages], "finishes": [...onFinish], "status", "error"} as JSON.
import { AbstractChat, DefaultChatTransport } from "ai";

class State {
  status = "ready";
  error = undefined;
  messages = [];
  listeners = new Set();
  pushMessage = (message) => { this.messages = this.messages.concat(message); this.changed(); };
  popMessage = () => { this.messages = this.messages.slice(0, -1); this.changed(); };
  replaceMessage = (index, message) => {
    this.messages = [...this.messages.slice(0, index), this.snapshot(message),
                     ...this.messages.slice(index + 1)];
    this.changed();
  };
  snapshot = (value) => structuredClone(value);
  changed() { for (const listener of this.listeners) listener(); }
}

class Chat extends AbstractChat {
  constructor(init) {
    const state = new State();
    super({ ...init, state });
    this.chatState = state;
  }
}

const options = JSON.parse(process.argv[2]);
const finishes = [];
const chat = new Chat({
  transport: new DefaultChatTransport({ api: options.api }),
  onFinish: ({ message, isAbort, isDisconnect, isError, finishReason }) =>
    finishes.push({ messageId: message.id, isAbort, isDisconnect, isError, finishReason }),
  onError: () => {},
});

const textLength = () => {
  const last = chat.lastMessage;
  if (!last || last.role !== "assistant") return 0;
  return last.parts.filter((p) => p.type === "text").reduce((n, p) => n + p.text.length, 0);
};

for (const prompt of options.prompts) {
  const sending = chat.sendMessage({ text: prompt });
  if (options.stopAfter != null) {
    await new Promise((resolve) => {
      const check = () => { if (textLength() >= options.stopAfter) resolve(); };
      chat.chatState.listeners.add(check);
      check();
    });
    await chat.stop();
  }
  await sending;
}

process.stdout.write(JSON.stringify({
  messages: chat.messages,
  finishes,
  status: chat.status,
  error: chat.error ? chat.error.message : null,
}));
