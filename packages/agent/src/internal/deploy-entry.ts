/**
 * The deployment functions the package index offers embedders (`rhizome
 * deploy` as a library), each loading its module on first call. Every agent
 * loads the index (a charm imports defineCharm from it): re-exported
 * statically, these made each agent load deploy's whole module graph (SSH,
 * machine preparation, the release bundler's loader, node:child_process),
 * which an agent never runs.
 */
type Deploy = typeof import('../deploy/deploy');
type Converge = typeof import('../deploy/converge');

const deployModule = (): Promise<Deploy> => import('../deploy/deploy');
const convergeModule = (): Promise<Converge> => import('../deploy/converge');

/** See deploy/deploy.ts `deploy`. */
export function deploy(...args: Parameters<Deploy['deploy']>): ReturnType<Deploy['deploy']> {
  return deployModule().then((m) => m.deploy(...args));
}
/** See deploy/deploy.ts `addUnit`. */
export function addUnit(...args: Parameters<Deploy['addUnit']>): ReturnType<Deploy['addUnit']> {
  return deployModule().then((m) => m.addUnit(...args));
}
/** See deploy/deploy.ts `startUnit`. */
export function startUnit(...args: Parameters<Deploy['startUnit']>): ReturnType<Deploy['startUnit']> {
  return deployModule().then((m) => m.startUnit(...args));
}
/** See deploy/deploy.ts `stopUnit`. */
export function stopUnit(...args: Parameters<Deploy['stopUnit']>): ReturnType<Deploy['stopUnit']> {
  return deployModule().then((m) => m.stopUnit(...args));
}
/** See deploy/deploy.ts `killUnit`. */
export function killUnit(...args: Parameters<Deploy['killUnit']>): ReturnType<Deploy['killUnit']> {
  return deployModule().then((m) => m.killUnit(...args));
}
/** See deploy/deploy.ts `removeUnit`. */
export function removeUnit(...args: Parameters<Deploy['removeUnit']>): ReturnType<Deploy['removeUnit']> {
  return deployModule().then((m) => m.removeUnit(...args));
}
/** See deploy/deploy.ts `destroy`. */
export function destroy(...args: Parameters<Deploy['destroy']>): ReturnType<Deploy['destroy']> {
  return deployModule().then((m) => m.destroy(...args));
}
/** See deploy/deploy.ts `relate`. */
export function relate(...args: Parameters<Deploy['relate']>): ReturnType<Deploy['relate']> {
  return deployModule().then((m) => m.relate(...args));
}
/** See deploy/converge.ts `checkConvergence`. */
export function checkConvergence(...args: Parameters<Converge['checkConvergence']>): ReturnType<Converge['checkConvergence']> {
  return convergeModule().then((m) => m.checkConvergence(...args));
}
/** See deploy/converge.ts `waitForConvergence`. */
export function waitForConvergence(...args: Parameters<Converge['waitForConvergence']>): ReturnType<Converge['waitForConvergence']> {
  return convergeModule().then((m) => m.waitForConvergence(...args));
}
