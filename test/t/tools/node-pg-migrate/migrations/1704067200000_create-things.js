exports.up = (pgm) => { pgm.createTable('npm_things', { id: 'id' }); };
exports.down = (pgm) => { pgm.dropTable('npm_things'); };
