/**
 * Detail templates: the contract's texts with `{name}` placeholders (src/contract/schema.ts lists the
 * names). The reader, the file listing and the sink all fill them with this one function.
 */

/** Fills `{name}` placeholders; an unknown name is left as written. */
export function renderDetail(template: string, vars: Readonly<Record<string, string | number>>): string {
  return template.replace(/\{([a-z_]+)\}/g, (all, name: string) => {
    const v = vars[name];
    return v === undefined ? all : String(v);
  });
}
