/** Small inline icons (no font or network needed); hidden from screen readers. */

const common = {
  width: 16,
  height: 16,
  viewBox: '0 0 16 16',
  'aria-hidden': 'true',
  class: 'icon',
} as const;

export function FolderIcon() {
  return (
    <svg {...common}>
      <path
        d="M1.5 3.5h4l1.5 1.5h7.5v8h-13z"
        fill="currentColor"
        fill-opacity="0.18"
        stroke="currentColor"
        stroke-width="1.2"
        stroke-linejoin="round"
      />
    </svg>
  );
}

export function FileIcon() {
  return (
    <svg {...common}>
      <path
        d="M3.5 1.5h6l3 3v10h-9z M9.5 1.5v3h3"
        fill="none"
        stroke="currentColor"
        stroke-width="1.2"
        stroke-linejoin="round"
      />
    </svg>
  );
}

export function LinkIcon() {
  return (
    <svg {...common}>
      <path
        d="M6.5 9.5l3-3M5 8l-1.5 1.5a2.1 2.1 0 0 0 3 3L8 11M11 8l1.5-1.5a2.1 2.1 0 0 0-3-3L8 5"
        fill="none"
        stroke="currentColor"
        stroke-width="1.2"
        stroke-linecap="round"
      />
    </svg>
  );
}

export function LockIcon() {
  return (
    <svg {...common}>
      <rect x="3" y="7" width="10" height="7.5" rx="1.5" fill="currentColor" />
      <path d="M5 7V5a3 3 0 0 1 6 0v2" fill="none" stroke="currentColor" stroke-width="1.6" />
    </svg>
  );
}
