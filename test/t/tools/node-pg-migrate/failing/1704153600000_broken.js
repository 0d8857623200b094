exports.up = (pgm) => { pgm.sql('ALTER TABLE npm_things ADD COLUMN id int'); };
exports.down = () => {};
