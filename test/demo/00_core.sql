-- What is installed: version, preload, shared memory
SELECT extversion AS extension, moltres_ops.library_version() AS library,
       moltres_ops.preloaded() AS preloaded
  FROM pg_extension WHERE extname = 'moltres_ops';
SELECT area, pg_size_pretty(bytes) AS size FROM moltres_ops.shmem_usage ORDER BY area;
SELECT name, setting, unit FROM pg_settings WHERE name LIKE 'moltres_ops.%' ORDER BY name;
