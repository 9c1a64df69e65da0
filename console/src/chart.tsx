import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

const clockFormat = new Intl.DateTimeFormat('en-GB', { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
const clock = (seconds: number) => clockFormat.format(new Date(seconds * 1000));

export interface ChartSeries {
  label: string;
  color: string;
  fill?: string;
}

/**
 * A uPlot time chart that follows its container's width. `data` is `[times (epoch s), ...values]`,
 * one array per series; a new `data` redraws without rebuilding the chart.
 */
export function Chart({ title, series, data, unit, testid }: { title: string; series: ChartSeries[]; data: (number | null)[][]; unit?: string; testid?: string }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | undefined>(undefined);

  useEffect(() => {
    const el = box.current!;
    const options: uPlot.Options = {
      width: Math.max(200, el.clientWidth),
      height: 200,
      legend: { show: true, live: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.15)] } },
      axes: [
        // Clock times (24 h), one line: uPlot's default stacks the date under the first label.
        { stroke: '#6b7280', grid: { stroke: '#eef0f4' }, ticks: { stroke: '#e5e7eb' }, space: 70, values: (_u, ticks) => ticks.map(clock) },
        { stroke: '#6b7280', grid: { stroke: '#eef0f4' }, ticks: { stroke: '#e5e7eb' }, size: 68, values: (_u, ticks) => ticks.map((v) => `${v}${unit ?? ''}`) },
      ],
      series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.color, width: 2, fill: s.fill, points: { show: false }, spanGaps: false }))],
    };
    plot.current = new uPlot(options, data as uPlot.AlignedData, el);
    const resize = new ResizeObserver(() => plot.current?.setSize({ width: Math.max(200, el.clientWidth), height: 200 }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      plot.current?.destroy();
      plot.current = undefined;
    };
    // The chart is built once per set of series; data changes go through setData below.
  }, [series.map((s) => s.label).join('|')]);

  useEffect(() => {
    plot.current?.setData(data as uPlot.AlignedData);
  }, [data]);

  return (
    <div class="card chart" data-testid={testid}>
      <h2>{title}</h2>
      <div ref={box} class="chart-box" />
    </div>
  );
}
