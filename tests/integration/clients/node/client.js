// The client matrix's steps (../README.md) with node's mysql2 (promise API).
// Prints one JSON line per step.
'use strict';

const fs = require('fs');
const mysql = require('mysql2/promise');

const env = process.env;
const EMOJI = '😀 ok 🎉 ünï';
const PARAM_TEXT = 'it\'s "q" \\ ünï 😀';
const ITEMS_FROM = 'SELECT id, name, price FROM items WHERE id >= ? ORDER BY id LIMIT 3';
const SENTENCE = 'I love this, thank you!';

function text(value) {
  if (value === null || value === undefined) return null;
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  return String(value);
}

function rowsAsText(rows) {
  return rows.map((row) => row.map(text));
}

function options(tls) {
  const settings = {
    host: env.MX_HOST,
    port: Number(env.MX_PORT),
    user: env.MX_USER,
    password: env.MX_PASSWORD,
    database: env.MX_DATABASE,
    rowsAsArray: true,
  };
  if (tls) settings.ssl = { ca: fs.readFileSync(env.MX_TLS_CA) };
  return settings;
}

let conn = null;

async function main() {
  if (conn === null) conn = await mysql.createConnection(options(false));
  return conn;
}

async function query(sql, params) {
  const [rows] = await (await main()).query(sql, params);
  return rows;
}

const steps = {
  async connect() {
    conn = await mysql.createConnection(options(false));
    return text((await query('SELECT CURRENT_USER()'))[0][0]);
  },
  async connect_tls() {
    const secure = await mysql.createConnection(options(true));
    try {
      const [rows] = await secure.query('SELECT CURRENT_USER()');
      return text(rows[0][0]);
    } finally {
      await secure.end();
    }
  },
  async params() {
    return rowsAsText(await query('SELECT ? AS i, ? AS s, ? AS n', [42, PARAM_TEXT, null]));
  },
  async server_prepared() {
    const results = [];
    for (const start of [2, 8]) {
      const [rows] = await (await main()).execute(ITEMS_FROM, [start]);
      results.push(rowsAsText(rows));
    }
    return results;
  },
  async client_prepared() {
    const results = [];
    for (const start of [2, 8]) results.push(rowsAsText(await query(ITEMS_FROM, [start])));
    return results;
  },
  async transaction() {
    const c = await main();
    await query('DELETE FROM scratch');
    await c.beginTransaction();
    await query('INSERT INTO scratch (id, txt) VALUES (?, ?)', [1, 'in a transaction']);
    const inside = (await query('SELECT COUNT(*) FROM scratch'))[0][0];
    await c.rollback();
    const after = (await query('SELECT COUNT(*) FROM scratch'))[0][0];
    return [text(inside), text(after)];
  },
  async call() {
    const results = await query('CALL items_upto(3)');
    const rows = [];
    for (const result of results) if (Array.isArray(result)) rows.push(...rowsAsText(result));
    return { rows, after: text((await query('SELECT 1'))[0][0]) };
  },
  async big_result() {
    const rows = await query("SELECT seq, CONCAT('row-', seq) FROM seq_1_to_100000");
    let sum = 0;
    let chars = 0;
    for (const [seq, label] of rows) {
      sum += Number(seq);
      chars += [...text(label)].length;
    }
    return { rows: rows.length, sum, chars };
  },
  async emoji() {
    await query('DELETE FROM scratch');
    await query('INSERT INTO scratch (id, txt) VALUES (?, ?)', [2, EMOJI]);
    const row = (await query('SELECT txt, CHAR_LENGTH(txt), HEX(txt) FROM scratch'))[0];
    const detail = row.map(text);
    return [detail, detail[0] === EMOJI];
  },
  async ml_constant() {
    return rowsAsText(await query(
      `SELECT aws_comprehend_detect_sentiment('${SENTENCE}', 'en'),` +
      ` aws_comprehend_detect_sentiment_confidence('${SENTENCE}', 'en')`));
  },
  async ml_column() {
    const rows = await query(
      "SELECT id, aws_comprehend_detect_sentiment(txt, 'en') FROM ml_texts ORDER BY id");
    return { rows: rows.length, labels: rows.map((row) => text(row[1])) };
  },
  async error_1146() {
    let found;
    try {
      await query('SELECT * FROM no_such_table');
      return [{ error: null }, false];
    } catch (error) {
      found = error;
    }
    const after = text((await query('SELECT 1'))[0][0]);
    return [{ code: found.errno, sqlstate: found.sqlState, after }, found.errno === 1146];
  },
  async close() {
    const c = await main();
    conn = null;
    await c.end();
    return null;
  },
};

function report(step, ok, detail) {
  process.stdout.write(JSON.stringify({ step, ok, detail }) + '\n');
}

async function reset() {
  if (conn === null) return;
  try {
    await conn.rollback();
    await conn.query('SELECT 1');
  } catch (error) {
    conn.destroy();
    conn = null;
  }
}

async function run() {
  for (const [name, step] of Object.entries(steps)) {
    let result;
    try {
      result = await step();
    } catch (error) {
      report(name, false, {
        code: error.errno ?? null, sqlstate: error.sqlState ?? null, error: String(error),
      });
      await reset();
      continue;
    }
    const [detail, ok] = Array.isArray(result) && result.length === 2 &&
      typeof result[1] === 'boolean' ? result : [result, true];
    report(name, ok, detail);
  }
}

run().then(() => process.exit(0));
