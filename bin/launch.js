// Shared by the bin launchers: loads the built CLI, or says how to build it.
export async function launch(prefix) {
  // `status | head` closes the pipe early: that is not an error.
  process.stdout.on('error', (error) => {
    if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw error;
  });
  let main;
  try {
    ({ main } = await import('../dist/cli/main.js'));
  } catch (error) {
    if (error && error.code === 'ERR_MODULE_NOT_FOUND' && String(error.message).includes('dist')) {
      process.stderr.write('error: the CLI is not built yet (dist/ is missing); run `npm install` or `npm run build` in the package folder\n');
      process.exit(1);
    }
    throw error;
  }
  process.exitCode = await main([...prefix, ...process.argv.slice(2)]);
}
