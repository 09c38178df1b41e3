/** A client user, known by a bearer token: one identity across the cluster. */
export interface User {
  readonly name: string;
  /** An administrator may force another user's lock open. */
  readonly admin: boolean;
}
