# syntax=docker/dockerfile:1
# mcpship: one image for both roles. The default command runs the REST API + MCP gateway; the
# worker service of docker-compose.yml overrides it with `cli/main.ts worker`.
#   docker build -t mcpship .
#   docker run --init -p 4000:4000 -e TEMPORAL_ADDRESS=... -e MONGODB_URI=... \
#     -e MCPSHIP_ADMIN_TOKEN=... mcpship

FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# Runtime dependencies only: tsx (which runs the TypeScript sources) is one of them.
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# The dashboard's static files, built with the dev dependencies (esbuild, uPlot) that the runtime image leaves out.
FROM node:20-bookworm-slim AS dashboard
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN node --import tsx dashboard/build.ts

FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    MCPSHIP_STATE_DIR=/data/mcpship \
    MCPSHIP_SERVICES_DIR=/data/services \
    MCPSHIP_API_HOST=0.0.0.0 \
    MCPSHIP_API_PORT=4000
WORKDIR /app
# Named volumes mounted here start out owned by the unprivileged `node` user of the base image.
RUN mkdir -p /data/mcpship /data/services && chown -R node:node /data
COPY --from=deps /app/node_modules ./node_modules
COPY . .
COPY --from=dashboard /app/dashboard/dist ./dashboard/dist
USER node
EXPOSE 4000
CMD ["node", "--import", "tsx", "cli/main.ts", "api"]
