// usage: node node_migrate.js knex|node-pg-migrate DIR
// Runs the tool's "migrate up" over DIR against the libpq environment
// (PGHOST, PGPORT, PGDATABASE); exits 1 with the error when it fails.
const [tool, dir] = process.argv.slice(2);
const connection = {
  host: process.env.PGHOST,
  port: Number(process.env.PGPORT),
  database: process.env.PGDATABASE,
  user: process.env.PGUSER || require('os').userInfo().username,
};

async function main() {
  if (tool === 'knex') {
    const knex = require('knex')({ client: 'pg', connection });
    try {
      const [batch, log] = await knex.migrate.latest({ directory: dir });
      console.log(`knex batch ${batch}: ${log.join(', ')}`);
    } finally {
      await knex.destroy();
    }
  } else if (tool === 'node-pg-migrate') {
    const { runner } = require('node-pg-migrate');
    const done = await runner({
      databaseUrl: connection,
      dir,
      direction: 'up',
      migrationsTable: 'pgmigrations',
      count: Infinity,
      log: () => {},
    });
    console.log(`node-pg-migrate ran: ${done.map((m) => m.name).join(', ')}`);
  } else {
    throw new Error(`unknown tool ${tool}`);
  }
}

main().catch((e) => {
  console.error(`${tool} failed: ${e.message}`);
  process.exit(1);
});
