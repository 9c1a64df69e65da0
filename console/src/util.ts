import { useEffect, useRef, useState } from 'preact/hooks';
import { errorText } from './api';

/** The part of the URL after `#`, without the leading `/`: `#/events/42` → `events/42`. */
export function useHashRoute(): string {
  const read = () => window.location.hash.replace(/^#\/?/, '');
  const [route, setRoute] = useState(read);
  useEffect(() => {
    const update = () => setRoute(read());
    window.addEventListener('hashchange', update);
    return () => window.removeEventListener('hashchange', update);
  }, []);
  return route;
}

export function navigate(route: string): void {
  window.location.hash = `#/${route}`;
}

/** Runs the latest `fn` every `ms` while mounted (and once at mount when `immediate`). */
export function useInterval(fn: () => void, ms: number, immediate = false): void {
  const latest = useRef(fn);
  latest.current = fn;
  useEffect(() => {
    if (immediate) latest.current();
    const id = window.setInterval(() => latest.current(), ms);
    return () => window.clearInterval(id);
  }, [ms, immediate]);
}

const integer = new Intl.NumberFormat('en', { maximumFractionDigits: 0 });
const decimal = new Intl.NumberFormat('en', { maximumFractionDigits: 2 });

export function count(value: number | undefined | null): string {
  return typeof value === 'number' && Number.isFinite(value) ? integer.format(value) : '–';
}

export function rate(value: number | undefined | null): string {
  return typeof value === 'number' && Number.isFinite(value) ? decimal.format(value) : '–';
}

export function ms(value: number | undefined | null): string {
  return typeof value === 'number' && Number.isFinite(value) ? `${decimal.format(value)} ms` : '–';
}

export function time(value: string | undefined | null): string {
  if (value === undefined || value === null || value === '') return '–';
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? value : date.toLocaleString('en-GB', { hour12: false });
}

export function dash(value: unknown): string {
  return value === undefined || value === null || value === '' ? '–' : String(value);
}

/**
 * A form's submit: `busy` while `run` works, the failure's text in `error` — unless `handled`
 * deals with that failure itself (a login's next step) and says so.
 */
export function useSubmit(run: () => Promise<void>, handled?: (error: unknown) => boolean) {
  const [error, setError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event) => {
    event.preventDefault();
    setError(undefined);
    setBusy(true);
    try {
      await run();
    } catch (e) {
      if (handled?.(e) !== true) setError(errorText(e));
    } finally {
      setBusy(false);
    }
  };
  return { busy, error, setError, submit };
}
