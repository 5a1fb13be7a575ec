// Bytes of bodies held for inspection across every exchange at once. A request body is held
// until it is forwarded, an inspected answer until the client has read it; a slow reader or a
// crowd of large answers must not grow the heap without bound. Past the budget, new
// inspections are refused (503, Retry-After) until memory is free again.
export class InspectionBudget {
  used = 0

  constructor(public limit: number) {}

  get full(): boolean {
    return this.used >= this.limit
  }

  take(n: number): boolean {
    if (this.used + n > this.limit) return false
    this.used += n
    return true
  }

  give(n: number): void {
    this.used = Math.max(0, this.used - n)
  }
}
