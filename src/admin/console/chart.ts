// The overview's chart as a model — line and marker paths, axis labels, a sentence for
// screen readers — computed here only: the page renders it as inline SVG, and the script redraws
// it from the same model in the JSON it polls (it sets attributes, it never builds markup).
// Two actions often have the same count (a disable, then disabled): each line has its own dash
// pattern and width (the stylesheet's .a-<action>: throttle, drawn first, widest, so it shows
// around a line drawn over it; disable wider than disabled, drawn over it) and its own hollow
// marker shape at every minute it is above zero (a circle around a square, a diamond around a
// triangle, a cross beside a plus), so both stay visible, in colour or not.
import { html, type Html } from './html.js'
import { ACTIONS, MINUTES, type ChartAction, type MinuteCounts } from './rate.js'

export interface ChartModel {
  /**
   * line: the path of the minutes above zero and the steps to and from them (a minute at zero
   * between two others at zero is left to the axis, where every action would be drawn over the
   * others); marks: the action's marker shape at each minute above zero.
   */
  lines: { action: ChartAction; line: string; marks: string }[]
  /** The y axis: 0, half, top. */
  ticks: string[]
  /** What the chart shows, in words (its accessible description and the line under it). */
  summary: string
}

const WIDTH = 640
const HEIGHT = 200
const LEFT = 44
const RIGHT = 8
const TOP = 10
const BOTTOM = 24

export function chartModel(minutes: readonly MinuteCounts[]): ChartModel {
  let peak = 0
  for (const m of minutes) for (const a of ACTIONS) peak = Math.max(peak, m.actions[a])
  const top = niceCeiling(peak)
  const x = (i: number) => LEFT + (i * (WIDTH - LEFT - RIGHT)) / (MINUTES - 1)
  const y = (v: number) => HEIGHT - BOTTOM - (v / top) * (HEIGHT - TOP - BOTTOM)
  const lines = ACTIONS.map((action) => ({
    action,
    line: linePath(
      minutes.map((m) => m.actions[action]),
      x,
      y,
    ),
    marks: minutes.map((m, i) => (m.actions[action] > 0 ? MARKS[action](x(i), y(m.actions[action])) : '')).join(''),
  }))
  const hour = Object.fromEntries(ACTIONS.map((a) => [a, minutes.reduce((n, m) => n + m.actions[a], 0)]))
  const last = minutes[minutes.length - 1]
  const requests = minutes.reduce((n, m) => n + m.requests, 0)
  const acted = ACTIONS.filter((a) => (hour[a] ?? 0) > 0).map((a) => `${hour[a]} ${a}`)
  const summary =
    `Last hour: ${requests} requests to sensitive routes; ` +
    (acted.length > 0 ? acted.join(', ') : 'no decision other than allow') +
    `. This minute: ${last?.requests ?? 0} requests, ${ACTIONS.reduce((n, a) => n + (last?.actions[a] ?? 0), 0)} acted on.`
  return { lines, ticks: ['0', String(top / 2), String(top)], summary }
}

export function chartSvg(model: ChartModel): Html {
  const plotBottom = HEIGHT - BOTTOM
  const mid = (TOP + plotBottom) / 2
  return html`<figure class="chart">
    <svg id="chart" viewBox="0 0 ${WIDTH} ${HEIGHT}" role="img" aria-labelledby="chart-title chart-summary">
      <title id="chart-title">Decisions per minute by action, last hour</title>
      <g class="grid">
        <line x1="${LEFT}" x2="${WIDTH - RIGHT}" y1="${TOP}" y2="${TOP}" />
        <line x1="${LEFT}" x2="${WIDTH - RIGHT}" y1="${mid}" y2="${mid}" />
        <line x1="${LEFT}" x2="${WIDTH - RIGHT}" y1="${plotBottom}" y2="${plotBottom}" />
      </g>
      <g class="axis">
        <text id="tick-0" x="${LEFT - 6}" y="${plotBottom + 4}">${model.ticks[0]}</text>
        <text id="tick-1" x="${LEFT - 6}" y="${mid + 4}">${model.ticks[1]}</text>
        <text id="tick-2" x="${LEFT - 6}" y="${TOP + 4}">${model.ticks[2]}</text>
        <text class="x" x="${LEFT}" y="${HEIGHT - 6}">60 min ago</text>
        <text class="x" x="${(LEFT + WIDTH - RIGHT) / 2}" y="${HEIGHT - 6}">30 min ago</text>
        <text class="x end" x="${WIDTH - RIGHT}" y="${HEIGHT - 6}">now</text>
      </g>
      ${model.lines.map(
        (l) =>
          html`<g class="series a-${l.action}">
            <title>${l.action}</title>
            <path id="line-${l.action}" class="line" d="${l.line}" />
            <path id="marks-${l.action}" class="marks" d="${l.marks}" />
          </g>`,
      )}
    </svg>
    <figcaption>
      <ul class="legend">
        ${ACTIONS.map(
          (a) =>
            html`<li>
              <svg class="key series a-${a}" viewBox="0 0 44 12" aria-hidden="true">
                <line class="line" x1="1" x2="43" y1="6" y2="6" />
                <path class="marks" d="${MARKS[a](22, 6)}" />
              </svg>
              ${a}
            </li>`,
        )}
      </ul>
      <p id="chart-summary">${model.summary}</p>
    </figcaption>
  </figure>`
}

function linePath(values: readonly number[], x: (i: number) => number, y: (v: number) => number): string {
  let d = ''
  let drawing = false
  for (let i = 1; i < values.length; i++) {
    const before = values[i - 1] as number
    const now = values[i] as number
    if (before === 0 && now === 0) {
      drawing = false
      continue
    }
    if (!drawing) d += `M${f(x(i - 1))} ${f(y(before))}`
    d += `L${f(x(i))} ${f(y(now))}`
    drawing = true
  }
  return d
}

/** Each action's marker, centred on (x, y): a path segment, drawn hollow. */
const MARKS: Record<ChartAction, (x: number, y: number) => string> = {
  throttle: (x, y) => `M${f(x - 4.5)} ${f(y)}a4.5 4.5 0 1 0 9 0a4.5 4.5 0 1 0 -9 0`,
  challenge: (x, y) => `M${f(x - 3)} ${f(y - 3)}h6v6h-6z`,
  disable: (x, y) => `M${f(x)} ${f(y - 4.5)}l4 7h-8z`,
  disabled: (x, y) => `M${f(x)} ${f(y - 4.5)}l4.5 4.5l-4.5 4.5l-4.5 -4.5z`,
  log: (x, y) => `M${f(x - 3.5)} ${f(y - 3.5)}l7 7m0 -7l-7 7`,
  unavailable: (x, y) => `M${f(x - 4.5)} ${f(y)}h9m-4.5 -4.5v9`,
}

function f(n: number): string {
  return n.toFixed(1)
}

/** 2, 4, 10, 20, 40, 100, … at or above the peak: the middle tick stays a whole number. */
function niceCeiling(peak: number): number {
  for (let power = 1; ; power *= 10) for (const m of [2, 4, 10]) if (m * power >= peak) return m * power
}
