// Builds the container tests' images once per run (tests/images/harness/images.ts)
// and hands their names to the test files through vitest's provide/inject.
import type { TestProject } from 'vitest/node';
import { buildTestImages, type TestImages } from './harness/images.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    images: TestImages;
  }
}

export default async function setup(project: TestProject): Promise<void> {
  const started = performance.now();
  const images = await buildTestImages();
  console.info(
    `container test images ready in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
  project.provide('images', images);
}
