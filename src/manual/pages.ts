import { describeProgram } from '../cli/describe.js';
import { createProgram } from '../cli/main.js';
import { DEFAULT_CONFIG_PATH } from '../config/load.js';
import { configSchema, defaults } from '../config/schema.js';
import { UNIT_NAME } from '../systemd/locate.js';
import { VERSION } from '../version.js';
import { renderCommandsPage } from './commands-page.js';
import { renderConfigPage } from './config-page.js';

export interface ManPage {
  // Its file name in man/ (package.json "man" lists them).
  file: string;
  text: string;
}

// The man pages, from the command tree --help prints and the schema the config is validated with; the sample
// config (config.sample.json) is passed in as text. scripts/gen-man.mjs writes them at build time.
export function renderManPages(sampleConfig: string): ManPage[] {
  const spec = describeProgram(createProgram({ out: () => undefined, err: () => undefined }, () => undefined));
  return [
    {
      file: `${spec.name}.8`,
      text: renderCommandsPage(spec, {
        version: VERSION,
        configPath: DEFAULT_CONFIG_PATH,
        indexPath: defaults.indexPath,
        unitPath: `/etc/systemd/system/${UNIT_NAME}`,
      }),
    },
    {
      file: `${spec.name}.json.5`,
      text: renderConfigPage({
        version: VERSION,
        configPath: DEFAULT_CONFIG_PATH,
        schema: configSchema,
        defaults,
        sample: sampleConfig,
      }),
    },
  ];
}
