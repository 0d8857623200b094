exports.up = (knex) => knex.schema.createTable('knex_gadgets', (t) => { t.increments('id'); });
exports.down = (knex) => knex.schema.dropTable('knex_gadgets');
