// junit.xml read the way CI tools read it, by a strict XML 1.0 reader written for the tests (no XML
// package is a dependency): it throws on anything a real parser would refuse (a character XML does not
// allow, a bare & or <, an unknown entity, a tag closed out of order, a repeated attribute, two roots),
// and normalises attribute values as parsers do (a raw newline or tab becomes a space). Then each
// testcase's result as Jenkins' junit step takes it: <error>, else <failure>, else <skipped>, else pass.

export interface XmlElement {
  readonly name: string;
  readonly attrs: Readonly<Record<string, string>>;
  readonly children: XmlElement[];
  text: string;
}

const NOT_XML = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;
const NAME = '[A-Za-z_][\\w.-]*';
const OPEN = new RegExp(`^<(${NAME})((?:\\s+${NAME}\\s*=\\s*(?:"[^"<]*"|'[^'<]*'))*)\\s*(/?)>`);
const CLOSE = new RegExp(`^</(${NAME})\\s*>`);
const ATTR = new RegExp(`(${NAME})\\s*=\\s*(?:"([^"<]*)"|'([^'<]*)')`, 'g');
const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function decode(raw: string, where: number): string {
  if (/&(?!(?:amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);)/.test(raw)) throw new Error(`a bare & or an unknown entity near offset ${where}`);
  return raw.replace(/&(#x[0-9a-fA-F]+|#\d+|\w+);/g, (_m, ref: string) =>
    ref.startsWith('#x') ? String.fromCodePoint(parseInt(ref.slice(2), 16)) : ref.startsWith('#') ? String.fromCodePoint(Number(ref.slice(1))) : ENTITIES[ref]!);
}

export function parseXml(xml: string): XmlElement {
  const bad = NOT_XML.exec(xml);
  if (bad) throw new Error(`a character XML 1.0 does not allow (U+${bad[0].codePointAt(0)!.toString(16)}) at offset ${bad.index}`);
  let i = xml.startsWith('<?xml') ? xml.indexOf('?>') + 2 : 0;
  const stack: XmlElement[] = [];
  let root: XmlElement | undefined;
  while (i < xml.length) {
    const rest = xml.slice(i);
    if (rest.startsWith('<!--')) {
      i = xml.indexOf('-->', i) + 3;
      continue;
    }
    if (rest.startsWith('</')) {
      const m = CLOSE.exec(rest);
      const top = stack.pop();
      if (!m || !top || top.name !== m[1]) throw new Error(`</${m?.[1]}> does not close <${top?.name}> at offset ${i}`);
      i += m[0].length;
      continue;
    }
    if (rest.startsWith('<')) {
      const m = OPEN.exec(rest);
      if (!m) throw new Error(`a malformed tag at offset ${i}: ${rest.slice(0, 40)}`);
      const attrs: Record<string, string> = {};
      for (const [, name, double, single] of m[2]!.matchAll(ATTR)) {
        if (name! in attrs) throw new Error(`attribute ${name} twice at offset ${i}`);
        attrs[name!] = decode((double ?? single)!.replace(/[\t\n\r]/g, ' '), i);
      }
      const element: XmlElement = { name: m[1]!, attrs, children: [], text: '' };
      if (stack.length) stack.at(-1)!.children.push(element);
      else if (root) throw new Error(`a second root element <${element.name}> at offset ${i}`);
      else root = element;
      if (!m[3]) stack.push(element);
      i += m[0].length;
      continue;
    }
    const end = xml.indexOf('<', i) === -1 ? xml.length : xml.indexOf('<', i);
    const raw = xml.slice(i, end);
    if (raw.includes(']]>')) throw new Error(`]]> in character data at offset ${i}`);
    if (stack.length) stack.at(-1)!.text += decode(raw.replace(/\r\n?/g, '\n'), i);
    else if (raw.trim()) throw new Error(`text outside the root element at offset ${i}`);
    i = end;
  }
  if (stack.length || !root) throw new Error(`unclosed <${stack.at(-1)?.name ?? 'root'}>`);
  return root;
}

export interface JunitCase {
  readonly classname: string;
  readonly name: string;
  readonly result: 'pass' | 'failure' | 'error' | 'skipped';
  readonly type: string | undefined;
  readonly message: string | undefined;
  readonly body: string;
}

export interface JunitSuite {
  readonly attrs: Readonly<Record<string, string>>;
  readonly properties: Readonly<Record<string, string>>;
  readonly cases: readonly JunitCase[];
  readonly systemOut: string;
}

/** The suites of a junit.xml; throws when a suite's counts disagree with its cases. */
export function readJunit(xml: string): { root: XmlElement; suites: JunitSuite[] } {
  const root = parseXml(xml);
  const suites = (root.name === 'testsuites' ? root.children.filter((c) => c.name === 'testsuite') : [root]).map((suite) => {
    const cases = suite.children.filter((c) => c.name === 'testcase').map((c) => {
      const outcome = ['error', 'failure', 'skipped'].map((kind) => c.children.find((x) => x.name === kind)).find(Boolean);
      return { classname: c.attrs.classname ?? '', name: c.attrs.name ?? '', result: (outcome?.name ?? 'pass') as JunitCase['result'], type: outcome?.attrs.type, message: outcome?.attrs.message, body: outcome?.text ?? '' };
    });
    const properties = Object.fromEntries((suite.children.find((c) => c.name === 'properties')?.children ?? []).map((p) => [p.attrs.name!, p.attrs.value!]));
    const count = (result: JunitCase['result']) => String(cases.filter((c) => c.result === result).length);
    const counted = { tests: String(cases.length), failures: count('failure'), errors: count('error'), skipped: count('skipped') };
    for (const [key, value] of Object.entries(counted)) if (suite.attrs[key] !== value) throw new Error(`testsuite ${key}="${suite.attrs[key]}" but its cases say ${value}`);
    return { attrs: suite.attrs, properties, cases, systemOut: suite.children.find((c) => c.name === 'system-out')?.text ?? '' };
  });
  return { root, suites };
}

/** Whether a CI gate on this report is green: no failure and no error in any suite. */
export function gatePasses(suites: readonly JunitSuite[]): boolean {
  return suites.every((s) => s.cases.every((c) => c.result !== 'failure' && c.result !== 'error'));
}
