exports.up = (knex) => knex.raw('ALTER TABLE knex_gadgets ADD COLUMN id int');
exports.down = () => Promise.resolve();
