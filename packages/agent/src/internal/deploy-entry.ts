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
// biome-ignore lint/suspicious/noExplicitAny: any function's parameters, as Parameters<> itself takes them.
type AsyncFunction = (...args: any[]) => Promise<unknown>;

/** `name` of the module `load` imports, as a function that imports it when first called (same signature). */
function onFirstCall<M extends Record<K, AsyncFunction>, K extends keyof M>(load: () => Promise<M>, name: K): M[K] {
  const call = (...args: Parameters<M[K]>): Promise<unknown> => load().then((m) => m[name](...args));
  return call as M[K];
}

const deployModule = (): Promise<Deploy> => import('../deploy/deploy');
const convergeModule = (): Promise<Converge> => import('../deploy/converge');

export const deploy = onFirstCall(deployModule, 'deploy');
export const addUnit = onFirstCall(deployModule, 'addUnit');
export const startUnit = onFirstCall(deployModule, 'startUnit');
export const stopUnit = onFirstCall(deployModule, 'stopUnit');
export const killUnit = onFirstCall(deployModule, 'killUnit');
export const removeUnit = onFirstCall(deployModule, 'removeUnit');
export const destroy = onFirstCall(deployModule, 'destroy');
export const relate = onFirstCall(deployModule, 'relate');
export const checkConvergence = onFirstCall(convergeModule, 'checkConvergence');
export const waitForConvergence = onFirstCall(convergeModule, 'waitForConvergence');
