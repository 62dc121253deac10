// Talking to the server: JSON in and out; a failed answer throws ApiError with its status.

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function detailOf(body, fallback) {
  if (typeof body.detail === "string") return body.detail;
  if (Array.isArray(body.detail)) {
    // FastAPI's validation errors: [{loc: [..., name], msg}, ...]
    return body.detail.map((d) => `${(d.loc || []).slice(-1)[0] || ""}: ${d.msg}`).join("; ");
  }
  return fallback;
}

export async function api(path, options) {
  let res;
  try {
    res = await fetch(path, Object.assign({ credentials: "same-origin" }, options));
  } catch (err) {
    throw new ApiError(0, err.message);
  }
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new ApiError(res.status, detailOf(body, res.statusText || String(res.status)));
  return body;
}

export function postJson(path, body) {
  return api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
}
