# The event generator of the Docker Compose deployment: the TypeScript generator (src/generator) on Node 20,
# run as the non-root user `node` (uid 1000). Built by `docker compose up` (service `generator`).
#   docker build -f generator.Dockerfile -t ecomstream-generator .
#   docker run --rm -v "$PWD/data/input:/app/data/input" ecomstream-generator --files 3 --interval 1

FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
# --ignore-scripts: "prepare" would compile before the sources are copied.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY src ./src
RUN npx tsc -p tsconfig.build.json

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY bin ./bin
COPY postgres ./postgres
RUN mkdir -p /app/data/input && chown -R node:node /app/data
USER node
VOLUME ["/app/data/input"]
ENTRYPOINT ["node", "bin/ecomstream.js", "generate", "--out", "/app/data/input"]
CMD ["--files", "20", "--events-per-file", "10", "--interval", "5"]
