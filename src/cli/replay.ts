// `sluice replay` and `sluice suggest` (placeholder until src/replay lands).
import type { Command } from 'commander'

export function registerReplayCommands(_program: Command, _setExitCode: (code: number) => void): void {}
