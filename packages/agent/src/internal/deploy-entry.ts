/**
 * The deployment functions the package index offers embedders (`rhizome
 * deploy` as a library), each loading its module on first call. Every agent
 * loads the index (a charm imports defineCharm from it): re-exported
 * statically, these made each agent load deploy's whole module graph (SSH,
 * machine preparation, the release bundler's loader, node:child_process),
 * which an agent never runs.
 */
type Deploy = typeof import('../deploy/deploy');
type UnitCommands = typeof import('../deploy/unit-commands');
type Destroy = typeof import('../deploy/destroy');
type Relate = typeof import('../deploy/relate');
type Converge = typeof import('../deploy/converge');
// biome-ignore lint/suspicious/noExplicitAny: any function's parameters, as Parameters<> itself takes them.
type AsyncFunction = (...args: any[]) => Promise<unknown>;

/** `name` of the module `load` imports, as a function that imports it when first called (same signature). */
function onFirstCall<M extends Record<K, AsyncFunction>, K extends keyof M>(load: () => Promise<M>, name: K): M[K] {
  const call = (...args: Parameters<M[K]>): Promise<unknown> => load().then((m) => m[name](...args));
  return call as M[K];
}

const deployModule = (): Promise<Deploy> => import('../deploy/deploy');
const unitCommandsModule = (): Promise<UnitCommands> => import('../deploy/unit-commands');
const destroyModule = (): Promise<Destroy> => import('../deploy/destroy');
const relateModule = (): Promise<Relate> => import('../deploy/relate');
const convergeModule = (): Promise<Converge> => import('../deploy/converge');

export const deploy = onFirstCall(deployModule, 'deploy');
export const addUnit = onFirstCall(unitCommandsModule, 'addUnit');
export const startUnit = onFirstCall(unitCommandsModule, 'startUnit');
export const stopUnit = onFirstCall(unitCommandsModule, 'stopUnit');
export const killUnit = onFirstCall(unitCommandsModule, 'killUnit');
export const removeUnit = onFirstCall(unitCommandsModule, 'removeUnit');
export const destroy = onFirstCall(destroyModule, 'destroy');
export const relate = onFirstCall(relateModule, 'relate');
export const checkConvergence = onFirstCall(convergeModule, 'checkConvergence');
export const waitForConvergence = onFirstCall(convergeModule, 'waitForConvergence');
